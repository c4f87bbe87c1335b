"""Wire models of the three documents, with the CEB field names exactly (camelCase, ``acturalPaid``).

Head fields are flat at the top level; order lines are under ``orderList``. ``guid``, ``appType``,
``appStatus`` and ``appTime`` may be omitted in JSON and get defaults (see ``intake.validate_document``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.ceb_types import (
    Amount,
    CebTime,
    CountryCode,
    CurrencyCode,
    DistrictCode,
    EnterpriseCode,
    Guid,
    IntCode,
    PositiveAmount,
    Str30,
    Str37,
    Str50,
    Str60,
    Str100,
    Str200,
    Str250,
    Str510,
    Str1000,
    UnitCode,
)

AppType = Annotated[Literal["1", "2", "3"], IntCode]
AppStatus = Annotated[Literal["1", "2"], IntCode]
IdTypeFixed = Annotated[Literal["1"], IntCode]

DocumentType = Literal["order", "payment", "waybill"]


class CebDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)

    guid: Guid | None = Field(default=None, description="C36 record id (upper-case UUID); generated if omitted")
    appType: AppType = Field(default="1", description="1 new, 2 change, 3 delete (cancel)")
    appTime: CebTime | None = Field(default=None, description="C14 YYYYMMDDhhmmss; now (UTC+8) if omitted")
    appStatus: AppStatus = Field(default="2", description="1 saved/draft (暂存), 2 declared (申报)")


class OrderLine(BaseModel):
    """OrderList — one goods line (ceb-messages.md §2.1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gnum: int = Field(ge=1, le=9999, description="Line number, 1..n")
    itemNo: Str30 | None = None
    itemName: Str250
    gmodel: Str510
    itemDescribe: Str1000 | None = None
    barCode: Str50 | None = None
    unit: UnitCode
    qty: PositiveAmount
    price: Amount
    totalPrice: Amount
    currency: CurrencyCode
    country: CountryCode
    note: Str1000 | None = None


class OrderIn(CebDocument):
    """CEB311 OrderHead + OrderList (ceb-messages.md §2.1)."""

    orderType: Literal["I"] = Field(description="I = import")
    orderNo: Str60
    ebpCode: EnterpriseCode = Field(description="Platform (电商平台) code")
    ebpName: Str100
    ebcCode: EnterpriseCode = Field(description="E-commerce enterprise (电商企业, seller) code")
    ebcName: Str100
    goodsValue: Amount
    freight: Amount
    discount: Amount
    taxTotal: Amount
    acturalPaid: Amount = Field(description="goodsValue + freight + taxTotal − discount (official spelling)")
    currency: CurrencyCode
    buyerRegNo: Str60
    buyerName: Str60
    buyerTelephone: Str30
    buyerIdType: IdTypeFixed
    buyerIdNumber: Str60
    payCode: EnterpriseCode | None = None
    payName: Str100 | None = None
    payTransactionId: Str60 | None = None
    batchNumbers: Str100 | None = None
    consignee: Str100
    consigneeTelephone: Str50
    consigneeAddress: Str200
    consigneeDistrict: DistrictCode | None = None
    note: Str1000 | None = None
    orderList: list[OrderLine] = Field(min_length=1, max_length=99)


class PaymentIn(CebDocument):
    """CEB411 PaymentHead (ceb-messages.md §2.2)."""

    payCode: EnterpriseCode
    payName: Str100
    payTransactionId: Str60
    orderNo: Str60
    ebpCode: EnterpriseCode
    ebpName: Str100
    payerIdType: IdTypeFixed
    payerIdNumber: Str60
    payerName: Str60
    telephone: Str60 | None = None
    amountPaid: Amount
    currency: CurrencyCode
    payTime: CebTime
    note: Str1000 | None = None


class WaybillIn(CebDocument):
    """CEB511 LogisticsHead (ceb-messages.md §2.3), plus the optional JSON extension ``ebpCode``."""

    logisticsCode: EnterpriseCode
    logisticsName: Str100
    logisticsNo: Str60
    billNo: Str37 | None = None
    orderNo: Str60
    freight: Amount | None = None
    insuredFee: Amount | None = None
    currency: CurrencyCode
    weight: Amount
    packNo: Annotated[Literal[1], Field(description="Fixed to 1")]
    goodsInfo: Str200 | None = None
    consignee: Str100
    consigneeAddress: Str200
    consigneeTelephone: Str50
    note: Str1000 | None = None
    ebpCode: EnterpriseCode | None = Field(
        default=None,
        description="Extension (not in CEB511): the platform of the order, to pick one record when several "
        "platforms use the same orderNo",
    )


AnyDocument = OrderIn | PaymentIn | WaybillIn
MODEL_BY_TYPE: dict[str, type[OrderIn] | type[PaymentIn] | type[WaybillIn]] = {
    "order": OrderIn,
    "payment": PaymentIn,
    "waybill": WaybillIn,
}


def natural_key(doc: AnyDocument) -> tuple[str, str]:
    """(owner enterprise code, business number) — the CEB natural key of the document."""
    if isinstance(doc, OrderIn):
        return doc.ebpCode, doc.orderNo
    if isinstance(doc, PaymentIn):
        return doc.payCode, doc.payTransactionId
    return doc.logisticsCode, doc.logisticsNo


KEY_FIELDS: dict[str, tuple[str, str]] = {
    "order": ("ebpCode", "orderNo"),
    "payment": ("payCode", "payTransactionId"),
    "waybill": ("logisticsCode", "logisticsNo"),
}


def key_dict(doc_type: str, owner_code: str, business_no: str) -> dict[str, Any]:
    first, second = KEY_FIELDS[doc_type]
    return {first: owner_code, second: business_no}
