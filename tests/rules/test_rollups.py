"""The rollups' pure rules: what a purchase contributes, the clearance-time buckets and the percentiles read
from them, suppression of small cells, and the daily view of hourly cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.rules.rollups import (
    LAST_BUCKET,
    Amounts,
    CellKey,
    PurchaseFacts,
    bucket_bounds,
    contribution,
    daily,
    decision_counts,
    difference,
    duration_bucket,
    from_e5,
    governing_level,
    percentile,
    risk_cells,
    series_bucket,
    suppress,
    to_e5,
)

T0 = datetime(2026, 12, 7, 10, 12, tzinfo=UTC)


def cleared() -> PurchaseFacts:
    return PurchaseFacts(
        status="CLEARED",
        created_at=T0,
        ebp_code="P1",
        ebc_code="S1",
        trade_mode="9610",
        port_code="2991",
        matched_at=T0 + timedelta(minutes=8),
        settled_at=T0 + timedelta(hours=2),
        documents_first_at=T0,
        documents_last_at=T0 + timedelta(minutes=8) - timedelta(seconds=3),
        customs_accepted_at=T0 + timedelta(minutes=9),
        tax_total=Decimal("46.12"),
        agency_states=(("customs", "released"),),
    )


def metrics(cells: dict[CellKey, Amounts]) -> dict[tuple[str, str, int], Amounts]:
    return {(k.metric, k.code, k.hour.hour): v for k, v in cells.items()}


def test_a_cleared_purchase_contributes_its_status_tax_and_clocks() -> None:
    found = metrics(contribution(cleared()))
    assert found == {
        ("purchases", "CLEARED", 10): Amounts(1, 4_612_000),
        ("matched", "", 10): Amounts(1),
        ("agency", "customs:released", 10): Amounts(1),
        ("tax", "", 12): Amounts(1, 4_612_000),
        ("t_match", "02", 12): Amounts(1),  # 3 s: [2, 4)
        ("t_customs", f"{duration_bucket(111 * 60):02d}", 12): Amounts(1),
        ("t_e2e", f"{duration_bucket(7200):02d}", 12): Amounts(1),
    }


def test_moving_from_mismatched_to_cleared_moves_the_cells() -> None:
    mismatched = PurchaseFacts(
        status="MISMATCHED", created_at=T0, ebp_code="P1", ebc_code="S1", discrepancy_codes=("PAYER_NOT_BUYER",)
    )
    change = difference(contribution(mismatched), contribution(cleared()))
    assert metrics(change)[("purchases", "MISMATCHED", 10)] == Amounts(-1)
    assert metrics(change)[("mismatch", "PAYER_NOT_BUYER", 10)] == Amounts(-1)
    assert metrics(change)[("purchases", "CLEARED", 10)] == Amounts(1, 4_612_000)
    assert difference(contribution(cleared()), contribution(cleared())) == {}
    assert contribution(None) == {}


@pytest.mark.parametrize(
    ("seconds", "bucket"), [(0, 0), (0.99, 0), (1, 1), (1.99, 1), (2, 2), (3600, 12), (2.0**22, LAST_BUCKET)]
)
def test_durations_fall_in_fixed_log_scale_buckets(seconds: float, bucket: int) -> None:
    assert duration_bucket(seconds) == bucket
    lower, upper = bucket_bounds(bucket)
    assert lower <= seconds
    assert upper is None or seconds < upper


def test_percentiles_come_from_the_histogram() -> None:
    assert percentile({}, 0.5) is None
    histogram = {1: 50, 10: 50}  # half in [1, 2) s, half in [512, 1024) s
    median = percentile(histogram, 0.5)
    assert median is not None
    assert 1 <= median <= 2
    p99 = percentile(histogram, 0.99)
    assert p99 is not None
    assert 512 <= p99 < 1024
    assert percentile({LAST_BUCKET: 3}, 0.9) == bucket_bounds(LAST_BUCKET)[0]


def test_small_counts_are_suppressed() -> None:
    assert [suppress(n) for n in (0, 1, 4, 5, 100)] == [0, None, None, 5, 100]


def test_amounts_are_exact_integers_of_a_hundred_thousandth() -> None:
    assert to_e5(Decimal("46.12")) == 4_612_000
    assert from_e5(to_e5(Decimal("46.12")) * 3) == Decimal("138.36")


def test_daily_cells_sum_the_hours_of_a_day_without_the_seller() -> None:
    one = contribution(cleared())
    later = PurchaseFacts(
        status="CLEARED",
        created_at=T0 + timedelta(hours=5),
        ebp_code="P1",
        ebc_code="S2",
        trade_mode="9610",
        port_code="2991",
    )
    other = contribution(later)
    together = dict(one)
    for key, amounts in other.items():
        together[key] = together.get(key, Amounts(0)) + amounts
    days = {(k.metric, k.code, k.ebc_code, k.hour): v for k, v in daily(together).items()}
    start = T0.replace(hour=0, minute=0)
    assert days[("purchases", "CLEARED", "", start)] == Amounts(2, 4_612_000)


def test_a_decision_counts_under_its_strictest_party_with_its_warnings_by_rule() -> None:
    levels = {"platform": "advanced_certified", "seller": "dishonest", "carrier": "regular"}
    assert governing_level(levels) == "dishonest"
    assert governing_level({"platform": "certified", "seller": "advanced_certified"}) == "certified"
    assert governing_level({"platform": "unheard_of"}) == "regular"
    assert governing_level({}) == "regular"
    cells = risk_cells(T0, ("P1", "S1", "9610", "2991"), levels, "inspect", ["R4", "R1", "R4"])
    assert {(k.metric, k.code, k.hour, k.ebc_code): v.n for k, v in cells.items()} == {
        ("decision", "dishonest:inspect", T0.replace(minute=0), "S1"): 1,
        ("warning", "R1", T0.replace(minute=0), "S1"): 1,
        ("warning", "R4", T0.replace(minute=0), "S1"): 2,
    }
    counts = decision_counts({"dishonest:inspect": 3, "dishonest:release": 1, "regular:block": 2, "odd": 9})
    assert counts["dishonest"] == {"release": 1, "inspect": 3, "block": 0}
    assert counts["regular"] == {"release": 0, "inspect": 0, "block": 2}
    assert list(counts) == ["advanced_certified", "certified", "regular", "dishonest", "seriously_dishonest"]


def test_an_hourly_series_over_a_long_period_is_answered_by_day() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    assert series_bucket("hour", now - timedelta(days=31), None, now) == "hour"
    assert series_bucket("hour", now - timedelta(days=31, seconds=1), None, now) == "day"
    assert series_bucket("hour", None, now, now) == "day"
    assert series_bucket("hour", now - timedelta(days=90), now - timedelta(days=80), now) == "hour"
    assert series_bucket("day", now - timedelta(hours=1), None, now) == "day"
