"""Mock tax: recomputes the tax with :mod:`app.rules.tax` and answers ``120`` with a CEB816-like tax bill
(noting a declared tax that differs); over the single or annual limit → ``100`` with ``-621005`` / ``-621018``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.mock_agencies.rules.common import (
    CN_TZ,
    AgencyDecision,
    QuotaUse,
    Receipt,
    mask_id,
    money,
    number,
    part,
    record_id,
    reject,
    return_time,
    rows,
    text,
    whole,
)
from app.rules import tax as tax_law

_TAX_BILL_NAMESPACE = uuid.UUID("6d0c3c3e-7b0a-4f59-9a51-2c0f8f1d6e16")


def quota_key(package: Mapping[str, Any], now: datetime) -> tuple[str, int]:
    """(buyerIdNumber, calendar year of the declaration) — the key of the buyer's annual total."""
    inventory = part(package, "inventory")
    buyer = (text(inventory.get("buyerIdNumber")) or text(part(package, "order").get("buyerIdNumber"))).upper()
    for name in ("declTime", "appTime"):
        stamp = text(inventory.get(name))
        if len(stamp) >= 8 and stamp[:8].isdigit():
            try:
                return buyer, datetime.strptime(stamp[:8], "%Y%m%d").replace(tzinfo=CN_TZ).year
            except ValueError:
                continue
    return buyer, now.astimezone(CN_TZ).year


def _taxable_lines(package: Mapping[str, Any]) -> tuple[list[tax_law.TaxableLine], list[str]]:
    goods = rows(package, "goods")
    by_item = {text(g.get("itemNo")): g for g in goods if text(g.get("itemNo"))}
    by_gcode = {text(g.get("gcode")): g for g in goods if text(g.get("gcode"))}
    taxable, problems = [], []
    for index, line in enumerate(rows(part(package, "inventory"), "inventoryList"), start=1):
        gnum = whole(line.get("gnum")) or index
        record = by_item.get(text(line.get("itemNo"))) or by_gcode.get(text(line.get("gcode")))
        value = number(line.get("totalPrice"))
        vat = number(record.get("vatRate")) if record else None
        consumption = number(record.get("consumptionTaxRate") or "0") if record else None
        if value is None or vat is None or consumption is None or not (0 <= consumption < 1):
            problems.append(f"第{gnum}项无法计税 (line {gnum}: no totalPrice or no filed tax rates)")
            continue
        taxable.append(tax_law.TaxableLine(gnum, value, vat, consumption))
    if not taxable and not problems:
        problems.append("清单表体为空 (inventoryList is empty)")
    return taxable, problems


def tax_decision(
    package: Mapping[str, Any],
    used_this_year: Decimal,
    now: datetime,
    single_limit: Decimal = tax_law.SINGLE_LIMIT,
    annual_limit: Decimal = tax_law.ANNUAL_LIMIT,
) -> AgencyDecision:
    """Recompute the tax; refuse a purchase over the single or the annual limit (``used_this_year`` is the
    buyer's dutiable values this tax agency already accepted in the declaration's calendar year)."""
    inventory = part(package, "inventory")
    buyer, year = quota_key(package, now)
    if not buyer:
        return reject("缺少订购人证件号码 (no buyerIdNumber)")
    lines, problems = _taxable_lines(package)
    freight = number(inventory.get("freight") or "0")
    insurance = number(inventory.get("insuredFee") or "0")
    if freight is None or insurance is None:
        problems.append("运费或保费无法识别 (freight / insuredFee is not a number)")
    if problems:
        return reject(*problems)
    assessment = tax_law.assess(lines, freight or tax_law.ZERO, insurance or tax_law.ZERO)
    breaches = tax_law.check_limits(assessment.dutiable_value, used_this_year, single_limit, annual_limit)
    if breaches:
        return reject(*(_breach_text(b, buyer) for b in breaches))
    note = _mismatch_note(part(package, "tax"), assessment)
    info = "税单已生成 (tax assessed)" + (f"; {note}" if note else "")
    return AgencyDecision(
        (Receipt("120", info),),
        tax_bill=_tax_bill(package, assessment, now, note),
        quota_use=QuotaUse(buyer, year, assessment.dutiable_value),
    )


def _breach_text(breach: tax_law.LimitBreach, buyer: str) -> str:
    if breach.code == "ANNUAL_QUOTA_EXCEEDED":
        return (
            f"{breach.ceb_return_status} 订购人{mask_id(buyer)}年度已使用额度{money(breach.used)}元,本次"
            f"{money(breach.this_purchase)}元,超过年度限值{money(breach.limit)}元 (annual quota exceeded)"
        )
    return (
        f"{breach.ceb_return_status} 本次交易完税价格{money(breach.this_purchase)}元超过单次限值"
        f"{money(breach.limit)}元 (single-transaction limit exceeded)"
    )


def _mismatch_note(declared: Mapping[str, Any], assessment: tax_law.TaxAssessment) -> str:
    total = number(declared.get("taxTotal"))
    if total is None:
        parts = [number(declared.get(n)) for n in ("customsTax", "valueAddedTax", "consumptionTax")]
        total = sum((p for p in parts if p is not None), tax_law.ZERO) if any(p is not None for p in parts) else None
    if total is None:
        return "申报未附税款,以核算为准 (no declared tax; the assessment applies)"
    if tax_law.cents(total) != assessment.tax_total:
        return (
            f"申报税款{money(total)}元与核算税款{money(assessment.tax_total)}元不一致,以核算为准 "
            f"(declared tax {money(total)} differs from the assessed {money(assessment.tax_total)})"
        )
    return ""


def _tax_bill(
    package: Mapping[str, Any], assessment: tax_law.TaxAssessment, now: datetime, note: str
) -> dict[str, Any]:
    inventory = part(package, "inventory")
    gcodes = {whole(line.get("gnum")): text(line.get("gcode")) for line in rows(inventory, "inventoryList")}
    head = {
        "guid": str(uuid.uuid5(_TAX_BILL_NAMESPACE, record_id(package) or text(inventory.get("guid")))).upper(),
        "returnTime": return_time(now),
        "invtNo": text(inventory.get("invtNo")),
        "orderNo": text(inventory.get("orderNo")),
        "logisticsNo": text(inventory.get("logisticsNo")),
        "customsCode": text(inventory.get("customsCode")),
        "ebcCode": text(inventory.get("ebcCode")),
        "logisticsCode": text(inventory.get("logisticsCode")),
        "agentCode": text(inventory.get("agentCode")),
        "assureCode": text(inventory.get("assureCode")),
        "status": "1",  # CEB818: 1 generated
        "customsTax": money(assessment.customs_tax),
        "valueAddedTax": money(assessment.value_added_tax),
        "consumptionTax": money(assessment.consumption_tax),
        "taxTotal": money(assessment.tax_total),
        "dutiableValue": money(assessment.dutiable_value),
        "note": note,
    }
    lines = [
        {
            "gnum": line.gnum,
            "gcode": gcodes.get(line.gnum, ""),
            "taxPrice": money(line.tax_price),
            "customsTax": money(line.customs_tax),
            "valueAddedTax": money(line.value_added_tax),
            "consumptionTax": money(line.consumption_tax),
        }
        for line in assessment.lines
    ]
    return {"taxHeadRd": head, "taxListRd": lines}
