"""The inventory (清单) composition rules that keep a CEB621 within the official 2022 facets (pure)."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal

import pytest

from app.rules.inventory import (
    ComposedInventory,
    DeclarationParty,
    GoodsRecord,
    compose_inventory,
    legal_quantity,
)
from app.schemas import examples
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn

PARTY = DeclarationParty("3120960A02", "卖家", "3120960A02", "1501", "1501", "9610", "5", "CA1234", "20261123")
GOODS = GoodsRecord("JP-SSD-50", "3304990099", "精华液", "035", Decimal("0.05"), "011", Decimal("1"), "116", True)


def compose(
    qty: str = "1", item_no: str = "JP-SSD-50", party: DeclarationParty = PARTY, **goods: object
) -> ComposedInventory:
    order = copy.deepcopy(examples.ORDER)
    order["orderList"][0] |= {"qty": qty, "itemNo": item_no}
    waybill = examples.WAYBILL | {"billNo": "MAWB-1"}
    return compose_inventory(
        guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC94",
        cop_no="C1",
        app_time="20261123102000",
        decl_date="20261123",
        order=OrderIn.model_validate(order),
        payment=PaymentIn.model_validate(examples.PAYMENT),
        waybill=WaybillIn.model_validate(waybill),
        goods={item_no: dataclasses.replace(GOODS, item_no=item_no, **goods)},  # type: ignore[arg-type]
        party=party,
    )


@pytest.mark.parametrize(
    ("qty", "factor", "expected"),
    [
        ("1.5", "0.00001", "0.00002"),
        ("1", "0.000014", "0.00001"),
        ("0.4", "0.00001", "0.00000"),
        ("3", "0.05", "0.15000"),
    ],
)
def test_legal_quantity_is_rounded_half_up_at_five_places(qty: str, factor: str, expected: str) -> None:
    assert legal_quantity(Decimal(qty), Decimal(factor)) == Decimal(expected)
    assert str(legal_quantity(Decimal(qty), Decimal(factor))) == expected


def test_qty1_and_qty2_hold_at_most_five_fraction_digits() -> None:
    composed = compose(qty="1.5", qty1_factor=Decimal("0.00001"), qty2_factor=Decimal("0.333333"))
    [line] = composed.inventory["inventoryList"]
    assert (line["qty1"], line["qty2"]) == ("0.00002", "0.5")
    assert composed.refusals == []


def test_a_legal_quantity_rounding_to_zero_refuses_the_declaration() -> None:
    composed = compose(qty="0.4", qty1_factor=Decimal("0.00001"))
    assert [r.code for r in composed.refusals] == ["LEGAL_QUANTITY_ROUNDS_TO_ZERO"]
    assert composed.refusals[0].ceb_return_status == "-900011"


def test_an_item_number_over_twenty_characters_is_left_out_and_the_line_keeps_its_gnum() -> None:
    [short] = compose(item_no="S" * 20).inventory["inventoryList"]
    [long] = compose(item_no="L" * 21).inventory["inventoryList"]
    assert short["itemNo"] == "S" * 20
    assert "itemNo" not in long
    assert long["gnum"] == 1


def test_direct_purchase_carries_its_conveyance_and_bonded_import_leaves_it_out() -> None:
    direct = compose().inventory
    assert (direct["trafNo"], direct["voyageNo"], direct["billNo"]) == ("CA1234", "20261123", "MAWB-1")
    bonded = compose(party=dataclasses.replace(PARTY, trade_mode="1210")).inventory
    assert not {"trafNo", "voyageNo", "billNo"} & set(bonded)
    unknown = compose(party=dataclasses.replace(PARTY, traf_no="", voyage_no=""))
    assert [r.code for r in unknown.refusals] == ["TRANSPORT_NOT_KNOWN"]
