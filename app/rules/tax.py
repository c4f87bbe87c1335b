"""Cross-border retail import tax (跨境电商综合税) and the purchase limits — pure functions.

Rules (财关税〔2016〕18号, 〔2018〕49号; ceb-messages.md §4.2), written down in docs/tax.md:

* dutiable value (完税价格) of a line = its goods price + its share of freight and insurance, the shares
  apportioned over the lines by goods value, in cents, by the largest-remainder method (so they add up);
* customs duty is 0 within the limits;
* consumption tax (ad valorem, composite-assessed price): value / (1 − rate) × rate, then 70 %;
* VAT: (value + the statutory consumption tax) × rate, then 70 %;
* each tax is rounded per line to the cent, half-up, and the list totals are the sums of the lines.

Worked example (docs/tax.md): one 200.00 cosmetic, VAT 13 %, consumption tax 15 %, no freight:
consumption tax 200 / 0.85 × 0.15 × 0.7 = 24.7059 → 24.71; VAT (200 + 35.2941) × 0.13 × 0.7 = 21.4118 →
21.41; total 46.12.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")
RETAIL_SHARE = Decimal("0.7")  # VAT and consumption tax are collected at 70 % within the limits
SINGLE_LIMIT = Decimal("5000")
ANNUAL_LIMIT = Decimal("26000")


@dataclass(frozen=True)
class TaxableLine:
    gnum: int
    goods_value: Decimal  # the line's totalPrice
    vat_rate: Decimal  # 0.13 for 13 %
    consumption_tax_rate: Decimal = ZERO


@dataclass(frozen=True)
class LineTax:
    gnum: int
    tax_price: Decimal  # dutiable value (CEB816 taxPrice)
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.customs_tax + self.value_added_tax + self.consumption_tax


@dataclass(frozen=True)
class TaxAssessment:
    lines: tuple[LineTax, ...]
    dutiable_value: Decimal
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal

    @property
    def tax_total(self) -> Decimal:
        return self.customs_tax + self.value_added_tax + self.consumption_tax


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def apportion(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``amount`` (rounded to cents) over ``weights`` in cents; the parts add up to it exactly."""
    total_cents = int(cents(amount) / CENT)
    total_weight = sum(weights, ZERO)
    if total_cents == 0 or not weights:
        return [ZERO for _ in weights]
    if total_weight == 0:
        weights = [Decimal(1)] * len(weights)
        total_weight = Decimal(len(weights))
    exact = [Decimal(total_cents) * w / total_weight for w in weights]
    floors = [int(e.to_integral_value(rounding=ROUND_DOWN)) for e in exact]
    leftover = total_cents - sum(floors)
    # Largest remainders first; the earlier line wins a tie, so the split is deterministic.
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:leftover]:
        floors[i] += 1
    return [Decimal(c) * CENT for c in floors]


def assess(lines: Sequence[TaxableLine], freight: Decimal = ZERO, insurance: Decimal = ZERO) -> TaxAssessment:
    """The tax of one purchase within the limits (duty 0, VAT and consumption tax at 70 %)."""
    values = [line.goods_value for line in lines]
    freight_shares = apportion(freight, values)
    insurance_shares = apportion(insurance, values)
    assessed = []
    for line, freight_share, insurance_share in zip(lines, freight_shares, insurance_shares, strict=True):
        value = line.goods_value + freight_share + insurance_share
        statutory_consumption = value / (1 - line.consumption_tax_rate) * line.consumption_tax_rate
        statutory_vat = (value + statutory_consumption) * line.vat_rate
        assessed.append(
            LineTax(
                gnum=line.gnum,
                tax_price=cents(value),
                customs_tax=ZERO,
                value_added_tax=cents(statutory_vat * RETAIL_SHARE),
                consumption_tax=cents(statutory_consumption * RETAIL_SHARE),
            )
        )
    return TaxAssessment(
        lines=tuple(assessed),
        dutiable_value=sum((t.tax_price for t in assessed), ZERO),
        customs_tax=ZERO,
        value_added_tax=sum((t.value_added_tax for t in assessed), ZERO),
        consumption_tax=sum((t.consumption_tax for t in assessed), ZERO),
    )


@dataclass(frozen=True)
class LimitBreach:
    code: str  # SINGLE_LIMIT_EXCEEDED | ANNUAL_QUOTA_EXCEEDED
    ceb_return_status: str  # -621005 | -621018
    limit: Decimal
    used: Decimal  # the buyer's dutiable values already declared this year (0 for the single limit)
    this_purchase: Decimal


def check_limits(
    dutiable_value: Decimal,
    used_this_year: Decimal,
    single_limit: Decimal = SINGLE_LIMIT,
    annual_limit: Decimal = ANNUAL_LIMIT,
) -> list[LimitBreach]:
    """Single-transaction and annual limits (财关税〔2018〕49号): over either, the purchase is not retail."""
    breaches = []
    if dutiable_value > single_limit:
        breaches.append(LimitBreach("SINGLE_LIMIT_EXCEEDED", "-621005", single_limit, ZERO, dutiable_value))
    if used_this_year + dutiable_value > annual_limit:
        breaches.append(LimitBreach("ANNUAL_QUOTA_EXCEEDED", "-621018", annual_limit, used_this_year, dutiable_value))
    return breaches
