"""Goods records (商品备案): what the inventory (清单, CEB621) and the tax need of a seller's item.

Wire names are camelCase like the CEB fields they feed: ``gcode``, ``gname``, ``unit1``/``unit2`` and
``country`` go to the InventoryList as they are; ``qty1Factor``/``qty2Factor`` turn the order line's ``qty``
(transaction unit) into ``qty1``/``qty2`` (legal units); the rates feed the cross-border tax.

Unit codes are the customs measurement-unit codes (计量单位代码, JGS-20), e.g. ``007`` 个 piece, ``011`` 件
item, ``035`` 千克 kilogram, ``036`` 克 gram, ``095`` 升 litre, ``142`` 瓶 bottle; country codes the customs
country codes (``116`` Japan, ``502`` USA).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, model_validator

from app.schemas.ceb_types import (
    CountryCode,
    EnterpriseCode,
    IntCode,
    Str30,
    Str250,
    UnitCode,
)

# 10-digit HS code (商品编码): 8-digit tariff line + 2-digit supplementary code (ceb-messages.md §2.4).
HsCode = Annotated[str, IntCode, StringConstraints(strip_whitespace=True, pattern=r"^\d{10}$")]

# A legal-unit quantity per transaction unit: > 0, N15,5 (at most 10 digits before the point, 5 after) rather
# than the N19,5 of CEB quantities — the column is NUMERIC, which SQLite keeps as a double (15 significant
# digits), so a longer value would be stored changed. Real factors are small (0.05 kg per bottle, 12 per box).
QtyFactor = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=5, allow_inf_nan=False)]

# A tax rate as a fraction (0.13 for 13 %): at least 0, below 1, at most 4 decimal places (the column is N6,4).
TaxRate = Annotated[Decimal, Field(ge=0, lt=1, decimal_places=4, allow_inf_nan=False)]


def _plain(value: Decimal) -> str:
    """A decimal as a string without exponent or trailing zeros ("0.1300" → "0.13", "100" stays "100")."""
    return format(value.normalize(), "f")


DecimalString = Annotated[Decimal, PlainSerializer(_plain, return_type=str, when_used="json")]

# The goods record of the Swagger example item (app/schemas/examples.py ORDER, line 1): a 50 ml bottle of
# serum, HS 3304990099 (其他美容品或化妆品及护肤品), legal units 千克 (035) and 件 (011). With its rates
# (VAT 13 %, consumption tax 15 % on cosmetics) the example order's taxTotal 46.12 is the computed tax.
EXAMPLE_GOODS: dict[str, Any] = {
    "ebcCode": "3120960A02",
    "itemNo": "JP-SSD-50",
    "gcode": "3304990099",
    "gname": "资生堂红腰子精华液 50ml",
    "unit1": "035",
    "qty1Factor": "0.05",
    "unit2": "011",
    "qty2Factor": "1",
    "country": "116",
    "vatRate": "0.13",
    "consumptionTaxRate": "0.15",
    "positiveList": True,
}


def _second_unit(unit2: str | None, qty2_factor: Decimal | None) -> None:
    if (unit2 is None) != (qty2_factor is None):
        raise ValueError("unit2 and qty2Factor go together: give both or neither")


class GoodsCreate(BaseModel):
    """File one item of a seller (电商企业): its HS code, legal units, origin and tax rates."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_GOODS]})

    ebcCode: EnterpriseCode = Field(description="The seller (电商企业) the item belongs to; filed with role seller")
    itemNo: Str30 = Field(description="The seller's item number, as in the order line's itemNo")
    gcode: HsCode = Field(description="10-digit HS code (8-digit tariff line + 2-digit supplementary code)")
    gname: Str250 = Field(description="Goods name for the inventory; must agree with the order")
    unit1: UnitCode = Field(description="First legal unit (JGS-20 code, e.g. 035 千克 kg)")
    qty1Factor: QtyFactor = Field(description="Quantity in unit1 per transaction unit of the order line, e.g. kg")
    unit2: UnitCode | None = Field(default=None, description="Second legal unit, if the HS code has one")
    qty2Factor: QtyFactor | None = Field(default=None, description="Quantity in unit2 per transaction unit")
    country: CountryCode = Field(description="Country of origin (customs country code, e.g. 116 Japan)")
    vatRate: TaxRate = Field(description="Import VAT rate as a fraction, e.g. 0.13")
    consumptionTaxRate: TaxRate = Field(description="Consumption tax rate as a fraction (0 if none), e.g. 0.15")
    positiveList: bool = Field(description="On the cross-border retail import positive list (正面清单)")

    @model_validator(mode="after")
    def _second_unit_complete(self) -> GoodsCreate:
        _second_unit(self.unit2, self.qty2Factor)
        return self


class GoodsPatch(BaseModel):
    """Change some fields of a goods record; absent fields stay. ``unit2`` and ``qty2Factor`` change together:
    both to set them, both ``null`` to remove them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"vatRate": "0.13", "consumptionTaxRate": "0.15", "positiveList": True}]},
    )

    gcode: HsCode | None = None
    gname: Str250 | None = None
    unit1: UnitCode | None = None
    qty1Factor: QtyFactor | None = None
    unit2: UnitCode | None = None
    qty2Factor: QtyFactor | None = None
    country: CountryCode | None = None
    vatRate: TaxRate | None = None
    consumptionTaxRate: TaxRate | None = None
    positiveList: bool | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> GoodsPatch:
        for name in self.model_fields_set:
            if name not in ("unit2", "qty2Factor") and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed (null); leave it out to keep it")
        if ("unit2" in self.model_fields_set) != ("qty2Factor" in self.model_fields_set):
            raise ValueError("unit2 and qty2Factor go together: give both or neither")
        _second_unit(self.unit2, self.qty2Factor)
        return self


class GoodsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [EXAMPLE_GOODS | {"createdAt": "2026-11-23T02:00:00Z", "updatedAt": "2026-11-23T02:00:00Z"}]
        }
    )

    ebcCode: str
    itemNo: str
    gcode: str
    gname: str
    unit1: str
    qty1Factor: DecimalString
    unit2: str | None
    qty2Factor: DecimalString | None
    country: str
    vatRate: DecimalString
    consumptionTaxRate: DecimalString
    positiveList: bool
    createdAt: datetime
    updatedAt: datetime


class GoodsList(BaseModel):
    items: list[GoodsOut]
    nextCursor: str | None = Field(description="Pass back as `cursor` for the next page; null on the last page")
