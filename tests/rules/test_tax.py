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


# Cases that land exactly on half a cent, worked on paper. Half-up gives the figures below; banker's rounding
# (half to even), rounding only the totals, or no rounding would give others (noted per case). Shared with the
# mock tax agency's own implementation (tests/mock_agencies/test_tax_independent.py).
# (lines as (value, VAT rate, consumption-tax rate), freight, [(VAT, consumption) per line], (VAT, consumption, total))
HALF_CENT_CASES = {
    # 15.00 × 0.13 × 0.7 = 1.365 → 1.37 (banker's: 1.36)
    "VAT only": ([("15.00", "0.13", "0")], "0", [("1.37", "0.00")], ("1.37", "0.00", "1.37")),
    # 0.85 / 0.85 × 0.15 × 0.7 = 0.105 → 0.11 (banker's: 0.10); no VAT
    "consumption tax only": ([("0.85", "0", "0.15")], "0", [("0.00", "0.11")], ("0.00", "0.11", "0.11")),
    # 0.85: consumption 0.105 → 0.11 (banker's 0.10); VAT (0.85 + 0.15) × 0.13 × 0.7 = 0.091 → 0.09
    "both, consumption on the half cent": (
        [("0.85", "0.13", "0.15")],
        "0",
        [("0.09", "0.11")],
        ("0.09", "0.11", "0.20"),
    ),
    # 12.75: consumption 12.75 / 0.85 × 0.15 = 2.25, × 0.7 = 1.575 → 1.58; VAT (12.75 + 2.25) × 0.091 = 1.365 →
    # 1.37 (banker's 1.36)
    "both, VAT on the half cent": ([("12.75", "0.13", "0.15")], "0", [("1.37", "1.58")], ("1.37", "1.58", "2.95")),
    # Three lines of 1.365 each: rounded per line 3 × 1.37 = 4.11; rounding the total instead: 4.095 → 4.10;
    # banker's per line: 4.08
    "per line, not on the total": (
        [("15.00", "0.13", "0"), ("15.00", "0.13", "0"), ("15.00", "0.13", "0")],
        "0",
        [("1.37", "0.00")] * 3,
        ("4.11", "0.00", "4.11"),
    ),
    # Freight 10.00 over two lines of 10.00: 5.00 each, so each dutiable value is 15.00 → 1.365 → 1.37
    "freight share onto the half cent": (
        [("10.00", "0.13", "0"), ("10.00", "0.13", "0")],
        "10.00",
        [("1.37", "0.00")] * 2,
        ("2.74", "0.00", "2.74"),
    ),
}


@pytest.mark.parametrize("case", list(HALF_CENT_CASES))
def test_half_a_cent_rounds_up_per_line(case: str) -> None:
    lines, freight, per_line, (vat, consumption, total) = HALF_CENT_CASES[case]
    result = assess(
        [TaxableLine(gnum, D(v), D(r), D(c)) for gnum, (v, r, c) in enumerate(lines, start=1)], freight=D(freight)
    )
    assert [(str(t.value_added_tax), str(t.consumption_tax)) for t in result.lines] == per_line
    assert (str(result.value_added_tax), str(result.consumption_tax), str(result.tax_total)) == (
        vat,
        consumption,
        total,
    )


def test_apportion_gives_the_leftover_cent_to_the_largest_remainder_even_on_a_smaller_line() -> None:
    # 10 cents over 5 : 1 → 8.33 and 1.67: the second line's remainder is larger, so it gets the tenth cent.
    assert apportion(D("0.10"), [D(5), D(1)]) == [D("0.08"), D("0.02")]
    assert apportion(D("0.10"), [D(1), D(2)]) == [D("0.03"), D("0.07")]


def test_apportion_a_single_cent() -> None:
    assert apportion(D("0.01"), [D(1), D(1)]) == [D("0.01"), D("0.00")]
    assert apportion(D("0.00"), [D(1), D(1)]) == [D(0), D(0)]


def test_every_line_keeps_its_number_and_pays_no_duty_within_the_limits() -> None:
    lines = [TaxableLine(3, D("80.00"), D("0.13")), TaxableLine(7, D("120.00"), D("0.13"), D("0.15"))]
    assessment = assess(lines, freight=D("10.00"))
    assert [line.gnum for line in assessment.lines] == [3, 7]
    assert [line.customs_tax for line in assessment.lines] == [D(0), D(0)]
    assert [line.tax_price for line in assessment.lines] == [D("84.00"), D("126.00")]
    assert assessment.dutiable_value == D("210.00")


def test_no_lines_assess_to_decimal_zeros() -> None:
    assessment = assess([])
    for total in (assessment.dutiable_value, assessment.value_added_tax, assessment.consumption_tax):
        assert isinstance(total, D)
        assert total == 0


def test_a_breach_carries_the_limit_what_was_used_and_this_purchase() -> None:
    from app.rules.tax import LimitBreach

    assert check_limits(D("5000.01"), D("100"), D("5000"), D("26000")) == [
        LimitBreach("SINGLE_LIMIT_EXCEEDED", "-621005", D("5000"), D(0), D("5000.01"))
    ]
    assert check_limits(D("300"), D("25800"), D("5000"), D("26000")) == [
        LimitBreach("ANNUAL_QUOTA_EXCEEDED", "-621018", D("26000"), D("25800"), D("300"))
    ]
