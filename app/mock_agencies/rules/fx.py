"""Mock FX (外汇): checks the payment — currency 142, amount = the order's ``acturalPaid``, the payer's ID an
18-character resident ID — → ``120`` with a settlement record, else ``100``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from stdnum.cn import ric

from app.mock_agencies.rules.common import CN_TZ, AgencyDecision, Receipt, mask_id, money, number, part, reject, text

_PRC_ID = re.compile(r"\d{17}[\dX]")


def valid_prc_id(id_number: str, check_digit: bool = False) -> bool:
    """An 18-character resident ID (17 digits + a digit or X); with ``check_digit`` also GB 11643's checksum
    and birth date (python-stdnum)."""
    if not _PRC_ID.fullmatch(id_number):
        return False
    return bool(ric.is_valid(id_number)) if check_digit else True


def fx_decision(package: Mapping[str, Any], now: datetime, check_id_digit: bool = False) -> AgencyDecision:
    payment, order = part(package, "payment"), part(package, "order")
    if not payment:
        return reject("缺少支付单 (the package has no payment)")
    problems = []
    currency = text(payment.get("currency"))
    if currency != "142":
        problems.append(f"币制{currency or '(空)'}应为142人民币 (currency must be 142)")
    paid, due = number(payment.get("amountPaid")), number(order.get("acturalPaid"))
    if paid is None or due is None or paid != due:
        problems.append(f"支付金额{paid}与订单实付金额{due}不符 (amountPaid must equal the order's acturalPaid)")
    payer_id = text(payment.get("payerIdNumber")).upper()
    if not valid_prc_id(payer_id, check_id_digit):
        problems.append(f"支付人证件号码{mask_id(payer_id)}不是有效的身份证号 (payerIdNumber is not an 18-char PRC ID)")
    if problems:
        return reject(*problems)
    assert paid is not None  # checked above
    settlement = {
        "payCode": text(payment.get("payCode")),
        "payTransactionId": text(payment.get("payTransactionId")),
        "orderNo": text(payment.get("orderNo")),
        "amount": money(paid),
        "currency": "142",
        "settledAt": now.astimezone(CN_TZ).isoformat(timespec="milliseconds"),
    }
    return AgencyDecision(
        (Receipt("120", "支付信息核验通过,已结算 (payment verified and settled)"),), settlement=settlement
    )
