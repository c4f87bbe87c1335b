"""Composing the inventory (清单, CEB621) from a matched triple and the goods records — pure.

Every CEB621 head and list field that the documents, the goods records and the settings determine is
filled (ceb-messages.md §2.4); fields only customs assigns (``preNo``, ``invtNo``) stay empty. The official
2022 facets are met by construction (ceb-messages.md §9), and what cannot be met is a refusal with a reason,
never a value the schema would refuse:

* ``InventoryList/itemNo`` holds at most 20 characters (an order line's may hold 30). A longer SKU is left
  out of the inventory line — the field is optional, and a shortened or made-up SKU would name an item the
  seller never filed. The line keeps its ``gnum``, which maps one-to-one to the order line of the same
  ``gnum`` (the spec's link), so the SKU is always that order line's.
* ``qty1`` / ``qty2`` are ``qty`` × the goods record's factor at 5 decimal places, rounded half-up (N19,5).
  A legal quantity that rounds to 0 is not declared as 0: the declaration is refused
  (``LEGAL_QUANTITY_ROUNDS_TO_ZERO``).
* Direct-purchase import (``9610``) lists carry ``trafNo`` and ``voyageNo`` (the official notes make them
  required there) and the waybill's ``billNo``; no document carries the conveyance, so both come from the
  declaring party's settings, and without them the declaration is refused (``TRANSPORT_NOT_KNOWN``). Bonded
  import (``1210``) leaves the three out, as the notes say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

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
    traf_no: str = ""  # the conveyance and voyage of a direct-import (9610) line
    voyage_no: str = ""


@dataclass(frozen=True)
class RefusalCode:
    code: str
    ceb_return_status: str  # ours (-9000nn): the spec has no code for these
    field: str
    zh: str
    en: str


# Why an inventory cannot be declared, whatever customs would say: the record becomes REJECTED with the code.
REFUSAL_CODES: dict[str, RefusalCode] = {
    rc.code: rc
    for rc in (
        RefusalCode(
            "LEGAL_QUANTITY_ROUNDS_TO_ZERO",
            "-900011",
            "inventoryList[n].qty1 / qty2",
            "法定数量(数量×换算系数)保留5位小数后为0,不能以0申报",
            "The legal quantity (qty × the goods record's factor) rounds to 0 at 5 decimal places; "
            "it cannot be declared as 0",
        ),
        RefusalCode(
            "TRANSPORT_NOT_KNOWN",
            "-900012",
            "trafNo / voyageNo",
            "直购进口清单须填写运输工具编号和航班航次号(SW_TRAF_NO / SW_VOYAGE_NO)",
            "A direct-purchase (9610) list needs trafNo and voyageNo; set SW_TRAF_NO and SW_VOYAGE_NO",
        ),
    )
}


@dataclass(frozen=True)
class InventoryRefusal:
    code: str
    detail: str

    @property
    def ceb_return_status(self) -> str:
        return REFUSAL_CODES[self.code].ceb_return_status


@dataclass(frozen=True)
class ComposedInventory:
    """The CEB621 ``InventoryHead`` fields with its ``inventoryList``, and why it cannot be declared (if so)."""

    inventory: dict[str, Any]
    refusals: list[InventoryRefusal] = field(default_factory=list)


INVENTORY_ITEM_NO_MAX = 20  # InventoryList/itemNo, 2022 edition (30 in 2018)
LEGAL_QUANTITY_PLACES = Decimal("0.00001")  # N19,5


def legal_quantity(qty: Decimal, factor: Decimal) -> Decimal:
    """``qty`` in a legal unit: qty × factor at 5 decimal places, half-up.

    >>> legal_quantity(Decimal("1.5"), Decimal("0.00001"))
    Decimal('0.00002')
    >>> legal_quantity(Decimal("2"), Decimal("0.05"))
    Decimal('0.10000')
    >>> legal_quantity(Decimal("0.4"), Decimal("0.00001"))
    Decimal('0.00000')
    """
    return (qty * factor).quantize(LEGAL_QUANTITY_PLACES, rounding=ROUND_HALF_UP)


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
) -> ComposedInventory:
    """The CEB621 ``InventoryHead`` fields with its ``inventoryList`` (JSON names, decimals as strings), and
    the refusals that keep it from being declared."""
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
    refusals: list[InventoryRefusal] = []
    if party.trade_mode == "9610":
        if party.traf_no and party.voyage_no:
            head["trafNo"], head["voyageNo"] = party.traf_no, party.voyage_no
        else:
            refusals.append(
                InventoryRefusal("TRANSPORT_NOT_KNOWN", "no conveyance (trafNo) or voyage (voyageNo) is configured")
            )
        if waybill.billNo:
            head["billNo"] = waybill.billNo
    if payment.note:
        head["note"] = payment.note[:1000]
    head["inventoryList"] = [_line(line, goods[cast(str, line.itemNo)], refusals) for line in order.orderList]
    return ComposedInventory(head, refusals)


def _line(line: Any, record: GoodsRecord, refusals: list[InventoryRefusal]) -> dict[str, Any]:
    qty1 = _legal(line, record.qty1_factor, record.unit1, "qty1", refusals)
    item: dict[str, Any] = {"gnum": line.gnum}
    if line.itemNo and len(line.itemNo) <= INVENTORY_ITEM_NO_MAX:
        item["itemNo"] = line.itemNo
    item |= {
        "itemName": line.itemName,
        "gcode": record.gcode,
        "gname": record.gname,
        "gmodel": line.gmodel,
        "barCode": line.barCode or "无",
        "country": line.country,
        "currency": "142",
        "qty": _text(line.qty),
        "unit": line.unit,
        "qty1": _text(qty1),
        "unit1": record.unit1,
        "price": _text(line.price),
        "totalPrice": _text(line.totalPrice),
    }
    if record.unit2 and record.qty2_factor is not None:
        item["qty2"] = _text(_legal(line, record.qty2_factor, record.unit2, "qty2", refusals))
        item["unit2"] = record.unit2
    return item


def _legal(line: Any, factor: Decimal, unit: str, name: str, refusals: list[InventoryRefusal]) -> Decimal:
    quantity = legal_quantity(line.qty, factor)
    if quantity == 0 and line.qty * factor != 0:
        detail = f"line {line.gnum}: {name} = {_text(line.qty)} × {_text(factor)} rounds to 0 (unit {unit})"
        refusals.append(InventoryRefusal("LEGAL_QUANTITY_ROUNDS_TO_ZERO", detail))
    return quantity
