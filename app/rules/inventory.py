"""Composing the inventory (清单, CEB621) from a matched triple and the goods records — pure.

Every CEB621 head and list field that the documents, the goods records and the settings determine is
filled (ceb-messages.md §2.4); fields only customs assigns (``preNo``, ``invtNo``) stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.schemas.documents import OrderIn, PaymentIn, WaybillIn


@dataclass(frozen=True)
class GoodsRecord:
    item_no: str
    gcode: str
    gname: str
    unit1: str
    qty1_factor: Decimal
    unit2: str | None
    qty2_factor: Decimal | None
    country: str
    positive_list: bool


@dataclass(frozen=True)
class DeclarationParty:
    """Who declares (agentCode) and who guarantees the tax (assureCode), and where."""

    agent_code: str
    agent_name: str
    assure_code: str
    customs_code: str
    port_code: str
    trade_mode: str
    traf_mode: str


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def compose_inventory(
    *,
    guid: str,
    cop_no: str,
    app_time: str,
    decl_date: str,
    order: OrderIn,
    payment: PaymentIn,
    waybill: WaybillIn,
    goods: Mapping[str, GoodsRecord],
    party: DeclarationParty,
) -> dict[str, Any]:
    """The CEB621 ``InventoryHead`` fields with its ``inventoryList`` (JSON names, decimals as strings)."""
    head: dict[str, Any] = {
        "guid": guid,
        "appType": "1",
        "appTime": app_time,
        "appStatus": "2",
        "orderNo": order.orderNo,
        "ebpCode": order.ebpCode,
        "ebpName": order.ebpName,
        "ebcCode": order.ebcCode,
        "ebcName": order.ebcName,
        "logisticsNo": waybill.logisticsNo,
        "logisticsCode": waybill.logisticsCode,
        "logisticsName": waybill.logisticsName,
        "copNo": cop_no,
        "assureCode": party.assure_code,
        "ieFlag": "I",
        "declTime": decl_date,
        "customsCode": party.customs_code,
        "portCode": party.port_code,
        "buyerIdType": "1",
        "buyerIdNumber": order.buyerIdNumber,
        "buyerName": order.buyerName,
        "buyerTelephone": order.buyerTelephone,
        "consigneeAddress": order.consigneeAddress,
        "agentCode": party.agent_code,
        "agentName": party.agent_name,
        "tradeMode": party.trade_mode,
        "trafMode": party.traf_mode,
        "country": order.orderList[0].country if party.trade_mode == "9610" else "142",
        "freight": _text(waybill.freight if waybill.freight is not None else order.freight),
        "insuredFee": _text(waybill.insuredFee or Decimal("0")),
        "currency": "142",
        "packNo": 1,
        "grossWeight": _text(waybill.weight),
        "netWeight": _text(waybill.weight),
    }
    if waybill.billNo:
        head["billNo"] = waybill.billNo
    if payment.note:
        head["note"] = payment.note[:1000]
    head["inventoryList"] = [_line(line, goods[line.itemNo or ""]) for line in order.orderList]
    return head


def _line(line: Any, record: GoodsRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "gnum": line.gnum,
        "itemNo": line.itemNo,
        "itemName": line.itemName,
        "gcode": record.gcode,
        "gname": record.gname,
        "gmodel": line.gmodel,
        "barCode": line.barCode or "无",
        "country": line.country,
        "currency": "142",
        "qty": _text(line.qty),
        "unit": line.unit,
        "qty1": _text(line.qty * record.qty1_factor),
        "unit1": record.unit1,
        "price": _text(line.price),
        "totalPrice": _text(line.totalPrice),
    }
    if record.unit2 and record.qty2_factor is not None:
        item["qty2"] = _text(line.qty * record.qty2_factor)
        item["unit2"] = record.unit2
    return item
