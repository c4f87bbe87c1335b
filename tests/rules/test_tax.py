"""Hand-worked tax cases: every figure below was worked on paper from the rule in app/rules/tax.py."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rules.tax import TaxableLine, apportion, assess, check_limits


def test_cosmetic_vat_and_consumption_tax_the_issue_example() -> None:
    # 200 / 0.85 × 0.15 = 35.294117…; × 0.7 = 24.705882 → 24.71
    # (200 + 35.294117) × 0.13 = 30.588235…; × 0.7 = 21.411764 → 21.41
    result = assess([TaxableLine(1, D("200.00"), D("0.13"), D("0.15"))])
    assert result.consumption_tax == D("24.71")
    assert result.value_added_tax == D("21.41")
    assert result.customs_tax == D("0")
    assert result.tax_total == D("46.12")
    assert result.dutiable_value == D("200.00")


def test_vat_only() -> None:
    # 300 × 0.13 × 0.7 = 27.30 — the familiar 9.1 % comprehensive rate
    result = assess([TaxableLine(1, D("300"), D("0.13"))])
    assert (result.value_added_tax, result.consumption_tax, result.tax_total) == (D("27.30"), D("0"), D("27.30"))


def test_vat_only_rounds_half_up_per_line() -> None:
    # 99.50 × 0.091 = 9.0545 → 9.05; 0.55 × 0.091 = 0.05005 → 0.05; summed per line: 9.10
    result = assess([TaxableLine(1, D("99.50"), D("0.13")), TaxableLine(2, D("0.55"), D("0.13"))])
    assert [line.value_added_tax for line in result.lines] == [D("9.05"), D("0.05")]
    assert result.value_added_tax == D("9.10")


def test_freight_and_insurance_apportioned_over_lines_by_value() -> None:
    # goods 100 + 300, freight 20 → 5 + 15, insurance 1.00 → 0.25 + 0.75
    # line 1: value 105.25, VAT 105.25 × 0.13 × 0.7 = 9.57775 → 9.58
    # line 2: value 315.75, consumption 315.75 / 0.85 × 0.15 = 55.720588…, × 0.7 = 39.004411 → 39.00
    #         VAT (315.75 + 55.720588) × 0.13 × 0.7 = 33.803823… → 33.80
    result = assess(
        [TaxableLine(1, D("100"), D("0.13")), TaxableLine(2, D("300"), D("0.13"), D("0.15"))],
        freight=D("20"),
        insurance=D("1.00"),
    )
    assert [line.tax_price for line in result.lines] == [D("105.25"), D("315.75")]
    assert [line.value_added_tax for line in result.lines] == [D("9.58"), D("33.80")]
    assert [line.consumption_tax for line in result.lines] == [D("0.00"), D("39.00")]
    assert result.dutiable_value == D("421.00")
    assert result.tax_total == D("82.38")


def test_apportion_uses_largest_remainders_and_adds_up() -> None:
    # 10.00 over three equal lines: 3.34 + 3.33 + 3.33 (the first line wins the tie)
    assert apportion(D("10"), [D("1"), D("1"), D("1")]) == [D("3.34"), D("3.33"), D("3.33")]
    # 0.05 over 1 : 2 : 2 → 1 + 2 + 2 cents exactly
    assert apportion(D("0.05"), [D("1"), D("2"), D("2")]) == [D("0.01"), D("0.02"), D("0.02")]
    assert apportion(D("7"), [D("0"), D("0")]) == [D("3.50"), D("3.50")]
    assert apportion(D("0"), [D("5")]) == [D("0")]


@given(
    st.decimals(min_value=0, max_value=1000, places=2),
    st.lists(st.decimals(min_value=0, max_value=10000, places=2), min_size=1, max_size=20),
)
def test_apportioned_parts_always_add_up(amount: D, weights: list[D]) -> None:
    parts = apportion(amount, weights)
    assert sum(parts, D(0)) == amount
    assert all(p >= 0 for p in parts)


@pytest.mark.parametrize(
    ("value", "used", "codes"),
    [
        (D("5000.00"), D("0"), []),
        (D("5000.01"), D("0"), ["SINGLE_LIMIT_EXCEEDED"]),
        (D("1000"), D("25000"), []),
        (D("1000.01"), D("25000"), ["ANNUAL_QUOTA_EXCEEDED"]),
        (D("6000"), D("21000"), ["SINGLE_LIMIT_EXCEEDED", "ANNUAL_QUOTA_EXCEEDED"]),
    ],
)
def test_limits(value: D, used: D, codes: list[str]) -> None:
    breaches = check_limits(value, used)
    assert [b.code for b in breaches] == codes
    spec = {"SINGLE_LIMIT_EXCEEDED": "-621005", "ANNUAL_QUOTA_EXCEEDED": "-621018"}
    assert [b.ceb_return_status for b in breaches] == [spec[c] for c in codes]
