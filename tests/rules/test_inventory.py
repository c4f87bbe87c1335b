"""The inventory (清单) composition rules that keep a CEB621 within the official 2022 facets (pure)."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal
from typing import Any

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
        ("2.5", "0.00001", "0.00003"),  # half-up, where banker's rounding would give 0.00002
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
    assert composed.refusals[0].detail == "line 1: qty1 = 0.4 × 0.00001 rounds to 0 (unit 035)"


def test_a_second_legal_quantity_rounding_to_zero_says_which_and_its_unit() -> None:
    composed = compose(qty="0.4", qty1_factor=Decimal("1"), qty2_factor=Decimal("0.00001"))
    assert [(r.code, r.detail) for r in composed.refusals] == [
        ("LEGAL_QUANTITY_ROUNDS_TO_ZERO", "line 1: qty2 = 0.4 × 0.00001 rounds to 0 (unit 011)")
    ]


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
    assert unknown.refusals[0].detail == "no conveyance (trafNo) or voyage (voyageNo) is configured"
    for half in ({"traf_no": ""}, {"voyage_no": ""}):
        partial = compose(party=dataclasses.replace(PARTY, **half))
        assert [r.code for r in partial.refusals] == ["TRANSPORT_NOT_KNOWN"]
        assert not {"trafNo", "voyageNo"} & set(partial.inventory)


# Field by field (ceb-messages.md §2.4): both trade modes, freight and insurance from the right document, the note,
# the defaults. Each of these tests fails under one of the mutations in tests/mutations.py (docs/testing.md).


def declaring(trade_mode: str = "9610") -> DeclarationParty:
    return DeclarationParty(
        "3120960D01", "申报代理", "3120960G01", "2244", "2245", trade_mode, "4", "CA1234", "20261123"
    )


def head_of(
    order: dict[str, Any] | None = None,
    payment: dict[str, Any] | None = None,
    waybill: dict[str, Any] | None = None,
    line: dict[str, Any] | None = None,
    trade_mode: str = "9610",
    goods: GoodsRecord = GOODS,
) -> dict[str, Any]:
    order_doc = copy.deepcopy(examples.ORDER) | (order or {})
    order_doc["orderList"] = [order_doc["orderList"][0] | (line or {})]
    composed = compose_inventory(
        guid="GUID-1",
        cop_no="COP1",
        app_time="20261207101500",
        decl_date="20261207",
        order=OrderIn.model_validate(order_doc),
        payment=PaymentIn.model_validate(copy.deepcopy(examples.PAYMENT) | (payment or {})),
        waybill=WaybillIn.model_validate(copy.deepcopy(examples.WAYBILL) | (waybill or {})),
        goods={goods.item_no: goods},
        party=declaring(trade_mode),
    )
    assert composed.refusals == []
    return composed.inventory


def test_head_fields_come_from_the_documents_the_party_and_the_call() -> None:
    head = head_of()
    assert {k: v for k, v in head.items() if k != "inventoryList"} == {
        "guid": "GUID-1",
        "appType": "1",
        "appTime": "20261207101500",
        "appStatus": "2",
        "orderNo": "GW20261123000101",
        "ebpCode": "3120960A01",
        "ebpName": "环球购跨境电商平台",
        "ebcCode": "3120960A02",
        "ebcName": "东京优选海外旗舰店",
        "logisticsNo": "SD7700012345CN",
        "logisticsCode": "3120960L01",
        "logisticsName": "顺达国际物流有限公司",
        "copNo": "COP1",
        "assureCode": "3120960G01",
        "ieFlag": "I",
        "declTime": "20261207",
        "customsCode": "2244",
        "portCode": "2245",
        "buyerIdType": "1",
        "buyerIdNumber": "33010619900101123X",
        "buyerName": "王小明",
        "buyerTelephone": "13800138000",
        "consigneeAddress": "浙江省杭州市西湖区文三路100号",
        "agentCode": "3120960D01",
        "agentName": "申报代理",
        "tradeMode": "9610",
        "trafMode": "4",
        "country": "116",
        "freight": "0",
        "insuredFee": "0",
        "currency": "142",
        "packNo": 1,
        "grossWeight": "0.35",
        "netWeight": "0.35",
        "billNo": "999-12345675",
        "trafNo": "CA1234",
        "voyageNo": "20261123",
    }


@pytest.mark.parametrize(("trade_mode", "country"), [("9610", "502"), ("1210", "142")])
def test_country_is_the_departure_country_for_direct_import_and_china_for_bonded(trade_mode: str, country: str) -> None:
    # Direct import (9610): the country the goods leave from (the order line's); bonded (1210): 142, China.
    head = head_of(line={"country": "502"}, trade_mode=trade_mode)
    assert (head["tradeMode"], head["country"]) == (trade_mode, country)
    assert head["inventoryList"][0]["country"] == "502"  # the line keeps the country of origin either way


def test_freight_is_what_the_carrier_charged_and_the_orders_when_the_waybill_has_none() -> None:
    assert head_of(order={"freight": "10"}, waybill={"freight": "12.50"})["freight"] == "12.5"
    assert head_of(order={"freight": "10"}, waybill={"freight": None})["freight"] == "10"


def test_insured_fee_is_the_waybills_and_zero_when_it_has_none() -> None:
    assert head_of(waybill={"insuredFee": "3.20"})["insuredFee"] == "3.2"
    assert head_of(waybill={"insuredFee": None})["insuredFee"] == "0"


def test_gross_and_net_weight_are_the_waybills_weight() -> None:
    head = head_of(waybill={"weight": "1.250"})
    assert (head["grossWeight"], head["netWeight"]) == ("1.25", "1.25")


def test_note_is_the_payments_cut_to_1000_characters_and_absent_without_one() -> None:
    assert head_of(payment={"note": "付款备注"})["note"] == "付款备注"
    assert "note" not in head_of(payment={"note": None})
    # The wire schema already refuses longer notes; the cut keeps the inventory within CEB621's C..1000 for
    # whatever the rule is given (a payload stored before a schema change), so it is tested past validation.
    order = OrderIn.model_validate(examples.ORDER)
    payment = PaymentIn.model_validate(examples.PAYMENT).model_copy(update={"note": "注" * 999 + "ab"})
    head = compose_inventory(
        guid="G",
        cop_no="C",
        app_time="20261207101500",
        decl_date="20261207",
        order=order,
        payment=payment,
        waybill=WaybillIn.model_validate(examples.WAYBILL),
        goods={GOODS.item_no: GOODS},
        party=declaring(),
    ).inventory
    assert head["note"] == "注" * 999 + "a"


def test_bill_no_only_when_the_waybill_has_one_on_direct_import() -> None:
    assert head_of(waybill={"billNo": "999-1"})["billNo"] == "999-1"
    assert "billNo" not in head_of(waybill={"billNo": None})


def test_list_line_fields_and_legal_quantities() -> None:
    (item,) = head_of(line={"qty": "3", "price": "10.50", "totalPrice": "31.50"})["inventoryList"]
    assert item == {
        "gnum": 1,
        "itemNo": "JP-SSD-50",
        "itemName": "资生堂红腰子精华液 50ml",
        "gcode": "3304990099",
        "gname": "精华液",
        "gmodel": "50ml/瓶,精华液,资生堂",
        "barCode": "4909978112345",
        "country": "116",
        "currency": "142",
        "qty": "3",
        "unit": "142",
        "qty1": "0.15",
        "unit1": "035",
        "price": "10.5",
        "totalPrice": "31.5",
        "qty2": "3",
        "unit2": "011",
    }


def test_bar_code_is_wu_when_the_line_has_none() -> None:
    (item,) = head_of(line={"barCode": None})["inventoryList"]
    assert item["barCode"] == "无"  # the spec's "none"


def test_second_legal_unit_only_when_the_goods_record_has_one() -> None:
    plain = dataclasses.replace(GOODS, unit2=None, qty2_factor=None)
    (item,) = head_of(goods=plain)["inventoryList"]
    assert "qty2" not in item
    assert "unit2" not in item
