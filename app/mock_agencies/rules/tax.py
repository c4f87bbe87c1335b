"""Mock tax: recomputes the tax from the published rule and answers ``120`` with a CEB816-like tax bill
(noting a declared tax that differs); over the single or annual limit → ``100`` with ``-621005`` / ``-621018``.

The computation is this agency's own (``assess`` below, exact rational arithmetic), written from the rule in
docs/tax.md and 财关税〔2016〕18号 / 〔2018〕49号 — deliberately not :mod:`app.rules.tax`: an agency that ran
the application's own function could never disagree with it, so a tax bug in the application would pass every
end-to-end run. tests/mock_agencies/test_tax_independent.py checks the two agree on the benchmark workload.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from math import floor
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

_TAX_BILL_NAMESPACE = uuid.UUID("6d0c3c3e-7b0a-4f59-9a51-2c0f8f1d6e16")
SINGLE_LIMIT = Decimal("5000")  # CNY per purchase (财关税〔2018〕49号)
ANNUAL_LIMIT = Decimal("26000")  # CNY per buyer and calendar year
_RETAIL_SHARE = Fraction(7, 10)  # VAT and consumption tax are collected at 70 % within the limits
_ZERO = Decimal("0")


@dataclass(frozen=True)
class TaxLine:
    gnum: int
    value: Decimal  # the line's totalPrice
    vat_rate: Decimal
    consumption_rate: Decimal


@dataclass(frozen=True)
class LineBill:
    gnum: int
    tax_price: Decimal
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal


@dataclass(frozen=True)
class Bill:
    lines: tuple[LineBill, ...]

    @property
    def dutiable_value(self) -> Decimal:
        return sum((line.tax_price for line in self.lines), _ZERO)

    @property
    def customs_tax(self) -> Decimal:
        return _ZERO  # no duty within the limits

    @property
    def value_added_tax(self) -> Decimal:
        return sum((line.value_added_tax for line in self.lines), _ZERO)

    @property
    def consumption_tax(self) -> Decimal:
        return sum((line.consumption_tax for line in self.lines), _ZERO)

    @property
    def tax_total(self) -> Decimal:
        return self.value_added_tax + self.consumption_tax


def _cents_half_up(amount: Fraction) -> Decimal:
    """An exact non-negative amount in yuan, to the cent, half a cent going up."""
    return Decimal(floor(amount * 100 + Fraction(1, 2))).scaleb(-2)


def _shares_in_cents(amount: Decimal, values: Sequence[Decimal]) -> list[int]:
    """``amount`` split over the lines by value, in whole cents that add up to it: each line its floor, the
    cents left over to the largest remainders (the earlier line first on a tie); equal weights if all are 0."""
    total = int(_cents_half_up(Fraction(amount)) * 100)
    weights = [Fraction(v) for v in values] if sum(values, _ZERO) else [Fraction(1)] * len(values)
    if not weights:
        return []
    exact = [total * w / sum(weights) for w in weights]
    parts = [floor(e) for e in exact]
    by_remainder = sorted(range(len(parts)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def assess(lines: Sequence[TaxLine], freight: Decimal, insurance: Decimal) -> Bill:
    """The tax of one purchase within the limits, per line: dutiable value = goods + apportioned freight and
    insurance; consumption tax = value / (1 − rate) × rate × 70 %; VAT = (value + the statutory consumption
    tax) × rate × 70 %; each rounded to the cent half-up, the totals the sums of the lines."""
    values = [line.value for line in lines]
    freight_cents = _shares_in_cents(freight, values)
    insurance_cents = _shares_in_cents(insurance, values)
    billed = []
    for line, f, i in zip(lines, freight_cents, insurance_cents, strict=True):
        value = Fraction(line.value) + Fraction(f + i, 100)
        rate = Fraction(line.consumption_rate)
        consumption = value / (1 - rate) * rate
        vat = (value + consumption) * Fraction(line.vat_rate)
        billed.append(
            LineBill(
                gnum=line.gnum,
                tax_price=_cents_half_up(value),
                customs_tax=_ZERO,
                value_added_tax=_cents_half_up(vat * _RETAIL_SHARE),
                consumption_tax=_cents_half_up(consumption * _RETAIL_SHARE),
            )
        )
    return Bill(tuple(billed))


@dataclass(frozen=True)
class Breach:
    code: str  # SINGLE_LIMIT_EXCEEDED | ANNUAL_QUOTA_EXCEEDED
    ceb_return_status: str  # -621005 | -621018
    limit: Decimal
    used: Decimal
    this_purchase: Decimal


def limit_breaches(dutiable: Decimal, used: Decimal, single_limit: Decimal, annual_limit: Decimal) -> list[Breach]:
    breaches = []
    if dutiable > single_limit:
        breaches.append(Breach("SINGLE_LIMIT_EXCEEDED", "-621005", single_limit, _ZERO, dutiable))
    if used + dutiable > annual_limit:
        breaches.append(Breach("ANNUAL_QUOTA_EXCEEDED", "-621018", annual_limit, used, dutiable))
    return breaches


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


def _taxable_lines(package: Mapping[str, Any]) -> tuple[list[TaxLine], list[str]]:
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
        taxable.append(TaxLine(gnum, value, vat, consumption))
    if not taxable and not problems:
        problems.append("清单表体为空 (inventoryList is empty)")
    return taxable, problems


def tax_decision(
    package: Mapping[str, Any],
    used_this_year: Decimal,
    now: datetime,
    single_limit: Decimal = SINGLE_LIMIT,
    annual_limit: Decimal = ANNUAL_LIMIT,
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
    assessment = assess(lines, freight or _ZERO, insurance or _ZERO)
    breaches = limit_breaches(assessment.dutiable_value, used_this_year, single_limit, annual_limit)
    if breaches:
        return reject(*(_breach_text(b, buyer) for b in breaches))
    note = _mismatch_note(part(package, "tax"), assessment)
    info = "税单已生成 (tax assessed)" + (f"; {note}" if note else "")
    return AgencyDecision(
        (Receipt("120", info),),
        tax_bill=_tax_bill(package, assessment, now, note),
        quota_use=QuotaUse(buyer, year, assessment.dutiable_value),
    )


def _breach_text(breach: Breach, buyer: str) -> str:
    if breach.code == "ANNUAL_QUOTA_EXCEEDED":
        return (
            f"{breach.ceb_return_status} 订购人{mask_id(buyer)}年度已使用额度{money(breach.used)}元,本次"
            f"{money(breach.this_purchase)}元,超过年度限值{money(breach.limit)}元 (annual quota exceeded)"
        )
    return (
        f"{breach.ceb_return_status} 本次交易完税价格{money(breach.this_purchase)}元超过单次限值"
        f"{money(breach.limit)}元 (single-transaction limit exceeded)"
    )


def _mismatch_note(declared: Mapping[str, Any], assessment: Bill) -> str:
    total = number(declared.get("taxTotal"))
    if total is None:
        parts = [number(declared.get(n)) for n in ("customsTax", "valueAddedTax", "consumptionTax")]
        total = sum((p for p in parts if p is not None), _ZERO) if any(p is not None for p in parts) else None
    if total is None:
        return "申报未附税款,以核算为准 (no declared tax; the assessment applies)"
    if _cents_half_up(Fraction(total)) != assessment.tax_total:
        return (
            f"申报税款{money(total)}元与核算税款{money(assessment.tax_total)}元不一致,以核算为准 "
            f"(declared tax {money(total)} differs from the assessed {money(assessment.tax_total)})"
        )
    return ""


def _tax_bill(package: Mapping[str, Any], assessment: Bill, now: datetime, note: str) -> dict[str, Any]:
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
