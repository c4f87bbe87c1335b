"""compose_inventory field by field (CEB621, ceb-messages.md §2.4): both trade modes, freight and insurance
from the right document, the note, the defaults and the legal quantities."""

from __future__ import annotations

import copy
from decimal import Decimal as D
from typing import Any

import pytest

from app.rules.inventory import DeclarationParty, GoodsRecord, compose_inventory
from app.schemas import examples
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn

GOODS = GoodsRecord(
    item_no="JP-SSD-50",
    gcode="3304990099",
    gname="精华液",
    unit1="035",
    qty1_factor=D("0.05"),
    unit2="142",
    qty2_factor=D("1"),
    country="116",
    positive_list=True,
)


def party(trade_mode: str = "9610") -> DeclarationParty:
    return DeclarationParty(
        agent_code="3120960D01",
        agent_name="申报代理",
        assure_code="3120960G01",
        customs_code="2244",
        port_code="2245",
        trade_mode=trade_mode,
        traf_mode="4",
    )


def compose(
    order: dict[str, Any] | None = None,
    payment: dict[str, Any] | None = None,
    waybill: dict[str, Any] | None = None,
    line: dict[str, Any] | None = None,
    trade_mode: str = "9610",
    goods: GoodsRecord = GOODS,
) -> dict[str, Any]:
    order_doc = copy.deepcopy(examples.ORDER) | (order or {})
    order_doc["orderList"] = [order_doc["orderList"][0] | (line or {})]
    return compose_inventory(
        guid="GUID-1",
        cop_no="COP1",
        app_time="20261207101500",
        decl_date="20261207",
        order=OrderIn.model_validate(order_doc),
        payment=PaymentIn.model_validate(copy.deepcopy(examples.PAYMENT) | (payment or {})),
        waybill=WaybillIn.model_validate(copy.deepcopy(examples.WAYBILL) | (waybill or {})),
        goods={goods.item_no: goods},
        party=party(trade_mode),
    )


def test_head_fields_come_from_the_documents_the_party_and_the_call() -> None:
    head = compose()
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
        "buyerIdNumber": "330106199001011234",
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
    }


@pytest.mark.parametrize(("trade_mode", "country"), [("9610", "502"), ("1210", "142")])
def test_country_is_the_departure_country_for_direct_import_and_china_for_bonded(trade_mode: str, country: str) -> None:
    # Direct import (9610): the country the goods leave from (the order line's); bonded (1210): 142, China.
    head = compose(line={"country": "502"}, trade_mode=trade_mode)
    assert (head["tradeMode"], head["country"]) == (trade_mode, country)
    assert head["inventoryList"][0]["country"] == "502"  # the line keeps the country of origin either way


def test_freight_is_what_the_carrier_charged_and_the_orders_when_the_waybill_has_none() -> None:
    assert compose(order={"freight": "10"}, waybill={"freight": "12.50"})["freight"] == "12.5"
    assert compose(order={"freight": "10"}, waybill={"freight": None})["freight"] == "10"


def test_insured_fee_is_the_waybills_and_zero_when_it_has_none() -> None:
    assert compose(waybill={"insuredFee": "3.20"})["insuredFee"] == "3.2"
    assert compose(waybill={"insuredFee": None})["insuredFee"] == "0"


def test_gross_and_net_weight_are_the_waybills_weight() -> None:
    head = compose(waybill={"weight": "1.250"})
    assert (head["grossWeight"], head["netWeight"]) == ("1.25", "1.25")


def test_note_is_the_payments_cut_to_1000_characters_and_absent_without_one() -> None:
    assert compose(payment={"note": "付款备注"})["note"] == "付款备注"
    assert "note" not in compose(payment={"note": None})
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
        party=party(),
    )
    assert head["note"] == "注" * 999 + "a"


def test_bill_no_only_when_the_waybill_has_one() -> None:
    assert compose(waybill={"billNo": "999-1"})["billNo"] == "999-1"
    assert "billNo" not in compose(waybill={"billNo": None})


def test_list_line_fields_and_legal_quantities() -> None:
    (item,) = compose(line={"qty": "3", "price": "10.50", "totalPrice": "31.50"})["inventoryList"]
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
        "unit2": "142",
    }


def test_bar_code_is_wu_when_the_line_has_none() -> None:
    (item,) = compose(line={"barCode": None})["inventoryList"]
    assert item["barCode"] == "无"  # the spec's "none"


def test_second_legal_unit_only_when_the_goods_record_has_one() -> None:
    plain = GoodsRecord(**{**GOODS.__dict__, "unit2": None, "qty2_factor": None})
    (item,) = compose(goods=plain)["inventoryList"]
    assert "qty2" not in item
    assert "unit2" not in item
