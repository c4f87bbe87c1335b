"""Mock customs: checks the inventory (清单) — ``100`` with the reasons, else ``120`` ``399`` ``800``, or
``120`` ``500`` when inspection samples the record (the release ``800`` follows later by callback)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.crypto.certificates import CertificateInfo
from app.mock_agencies.rules.common import (
    CN_TZ,
    AgencyDecision,
    Receipt,
    number,
    part,
    record_id,
    reject,
    rows,
    text,
    whole,
)
from app.mock_agencies.rules.signature import signature_problems

TRADE_MODES = ("9610", "1210")
# CEB621 fields the spec marks required (ceb-messages.md §2.4); the mock customs refuses a list without them.
HEAD_REQUIRED = (
    "guid", "appType", "appTime", "appStatus", "orderNo", "ebpCode", "ebpName", "ebcCode", "ebcName",
    "logisticsNo", "logisticsCode", "logisticsName", "assureCode", "ieFlag", "declTime", "customsCode",
    "portCode", "buyerIdType", "buyerIdNumber", "buyerName", "buyerTelephone", "consigneeAddress", "agentCode",
    "agentName", "tradeMode", "trafMode", "country", "freight", "insuredFee", "currency", "packNo",
    "grossWeight", "netWeight",
)  # fmt: skip
LIST_REQUIRED = (
    "gnum", "gcode", "gname", "gmodel", "country", "currency", "qty", "unit", "qty1", "unit1", "price",
    "totalPrice",
)  # fmt: skip

_GCODE = re.compile(r"\d{10}")
_OFFICE = re.compile(r"\d{4}")


def customs_problems(package: Mapping[str, Any]) -> list[str]:
    """Why customs would refuse the inventory (清单); empty when it is acceptable."""
    inventory = part(package, "inventory")
    if not inventory:
        return ["缺少清单 (the package has no inventory)"]
    problems = [
        f"清单表头缺少{name} (InventoryHead.{name} is required)"
        for name in HEAD_REQUIRED
        if not text(inventory.get(name))
    ]
    trade_mode = text(inventory.get("tradeMode"))
    if trade_mode and trade_mode not in TRADE_MODES:
        problems.append(f"监管方式{trade_mode}不适用 (tradeMode must be 9610 or 1210)")
    if text(inventory.get("ieFlag")) not in ("", "I"):
        problems.append("进出口标记应为I (ieFlag must be I)")
    for name in ("customsCode", "portCode"):
        value = text(inventory.get(name))
        if value and not _OFFICE.fullmatch(value):
            problems.append(f"{name}应为4位关区代码 ({name} must be 4 digits)")
    if text(inventory.get("currency")) not in ("", "142"):
        problems.append("币制应为142 (currency must be 142)")
    lines = rows(inventory, "inventoryList")
    if not lines:
        return [*problems, "清单表体为空 (inventoryList is empty)"]
    problems += _line_problems(lines)
    problems += _order_problems(inventory, lines, part(package, "order"))
    return problems


def _line_problems(lines: list[Mapping[str, Any]]) -> list[str]:
    problems = []
    for index, line in enumerate(lines, start=1):
        label = f"表体第{index}项"
        problems += [f"{label}缺少{name} (line {index}: {name} is required)" for name in LIST_REQUIRED
                     if not text(line.get(name))]  # fmt: skip
        gcode = text(line.get("gcode"))
        if gcode and not _GCODE.fullmatch(gcode):
            problems.append(f"{label}商品编码{gcode}应为10位数字 (line {index}: gcode must be 10 digits)")
    gnums = [whole(line.get("gnum")) for line in lines]
    if gnums != list(range(1, len(lines) + 1)):
        problems.append(f"表体序号应从1连续编号 (gnum must run 1..{len(lines)}, got {gnums})")
    return problems


def _order_problems(
    inventory: Mapping[str, Any], lines: list[Mapping[str, Any]], order: Mapping[str, Any]
) -> list[str]:
    if not order:
        return ["缺少订单,无法核对清单 (the package has no order to check the inventory against)"]
    problems = []
    for name in ("orderNo", "ebpCode", "ebcCode"):
        if text(inventory.get(name)) and text(inventory.get(name)) != text(order.get(name)):
            problems.append(f"清单{name}与订单不一致 (InventoryHead.{name} differs from the order)")
    order_lines = {whole(line.get("gnum")): line for line in rows(order, "orderList")}
    if len(order_lines) != len(lines):
        problems.append(f"清单表体{len(lines)}项,订单{len(order_lines)}项 (inventory and order line counts differ)")
    for line in lines:
        gnum = whole(line.get("gnum"))
        order_line = order_lines.get(gnum)
        if order_line is None:
            problems.append(f"清单第{gnum}项在订单中不存在 (inventory line {gnum} has no order line)")
            continue
        item_no, order_item_no = text(line.get("itemNo")), text(order_line.get("itemNo"))
        if item_no and order_item_no and item_no != order_item_no:
            problems.append(f"清单第{gnum}项货号与订单不一致 (line {gnum}: itemNo {item_no} ≠ order {order_item_no})")
        for name in ("qty", "totalPrice"):
            value, ordered = number(line.get(name)), number(order_line.get(name))
            if value is not None and ordered is not None and value != ordered:
                problems.append(f"清单第{gnum}项{name}与订单不一致 (line {gnum}: {name} {value} ≠ order {ordered})")
    return problems


def inventory_number(package: Mapping[str, Any], now: datetime) -> str:
    """The invtNo customs assigns on acceptance (C18): the 4-digit customs area, the year, the I/E flag and a
    9-digit serial — here derived from the record, so that every receipt of one inventory carries the same.

    >>> inventory_number({"recordId": "r1", "inventory": {"customsCode": "2244"}}, datetime(2026, 5, 1, tzinfo=CN_TZ))
    '22442026I402423336'
    """
    area = text(part(package, "inventory").get("customsCode"))[:4].rjust(4, "0")
    serial = int(hashlib.sha256(record_id(package).encode()).hexdigest(), 16) % 10**9
    return f"{area}{now.astimezone(CN_TZ).year:04d}I{serial:09d}"


def customs_decision(
    package: Mapping[str, Any], inspect: bool, certificate: CertificateInfo | None = None, now: datetime | None = None
) -> AgencyDecision:
    """``inspect``: inspection sampled this record (:func:`selected_for_inspection`). ``certificate``: the single
    window's, to verify the signed CEB621 with (None: the signature is not looked at). ``now``: when it is
    decided (the year of the inventory number; None: now)."""
    problems = signature_problems(package, certificate) if certificate is not None else []
    problems += customs_problems(package)
    if problems:
        return reject(*problems)
    invt_no = inventory_number(package, now or datetime.now(CN_TZ))
    if inspect:
        return AgencyDecision(
            (
                Receipt("120", "海关入库", invt_no),
                Receipt("500", "查验: 布控命中,待查验后放行 (held for inspection)", invt_no),
            ),
            held_for_inspection=True,
        )
    return AgencyDecision(
        (Receipt("120", "海关入库", invt_no), Receipt("399", "海关审结", invt_no), Receipt("800", "放行", invt_no))
    )


RELEASE_AFTER_INSPECTION = Receipt("800", "查验完毕,放行 (released after inspection)")
