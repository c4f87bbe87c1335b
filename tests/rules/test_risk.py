"""Pure tests of the risk rules (app/rules/risk.py): address normalisation, keyed subjects, R1–R5."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from app.rules.risk import (
    PRICE_STEP,
    RULES,
    PartyRates,
    PurchaseSignals,
    Thresholds,
    enterprise_outliers,
    median_price,
    normalise_address,
    price_bucket,
    subject_key,
    warnings_for,
)

QUIET = PurchaseSignals(1, 1, 1, 1, 1, Decimal("200"), Decimal("26000"))


@pytest.mark.parametrize(
    "written",
    [
        "浙江省杭州市西湖区文三路1号3幢",
        "浙江杭州市西湖区文三路1号3幢",
        "杭州市西湖区 文三路 1号 3幢",
        "杭州西湖区文三路１号，3幢",
        "浙江省 杭州市 西湖区 文三路1号-3幢",
    ],
)
def test_ways_of_writing_one_address_count_as_one(written: str) -> None:
    assert normalise_address(written) == "杭州西湖文三路1号3幢"


def test_different_addresses_stay_different() -> None:
    assert normalise_address("杭州市西湖区文三路1号") != normalise_address("杭州市西湖区文三路2号")
    assert normalise_address("杭州市西湖区文三路1号") != normalise_address("杭州市余杭区文三路1号")
    assert normalise_address("上海市浦东新区张杨路1号") == normalise_address("上海浦东新区张杨路1号")


def test_subject_keys_are_keyed_hashes() -> None:
    key = subject_key(b"secret", "id", "33010619900101123X")
    assert key == subject_key(b"secret", "id", "33010619900101123X")
    assert len(key) == 32
    assert "33010619900101123X" not in key
    assert key != subject_key(b"other", "id", "33010619900101123X")
    assert key != subject_key(b"secret", "phone", "33010619900101123X")


@pytest.mark.parametrize(
    ("signals", "rule"),
    [
        (replace(QUIET, ids_at_address=5), "R1"),
        (replace(QUIET, addresses_of_id=4), "R2"),
        (replace(QUIET, ids_at_phone=3), "R3"),
        (replace(QUIET, orders_of_id_day=5), "R4"),
        (replace(QUIET, platforms_of_id_day=3), "R4"),
        (replace(QUIET, quota_used=Decimal("20800")), "R5"),
    ],
)
def test_each_rule_fires_at_its_threshold_and_not_below(signals: PurchaseSignals, rule: str) -> None:
    assert [w.rule for w in warnings_for(signals, Thresholds())] == [rule]
    below = PurchaseSignals(
        *(
            value - 1 if isinstance(value, int) and value > 1 else value
            for value in (
                signals.ids_at_address,
                signals.addresses_of_id,
                signals.ids_at_phone,
                signals.orders_of_id_day,
                signals.platforms_of_id_day,
            )
        ),
        quota_used=signals.quota_used - Decimal("0.01") if rule == "R5" else signals.quota_used,
        annual_limit=signals.annual_limit,
    )
    assert warnings_for(below, Thresholds()) == []


def test_thresholds_are_configuration() -> None:
    ring = replace(QUIET, ids_at_address=3)
    assert warnings_for(ring, Thresholds()) == []
    assert [w.rule for w in warnings_for(ring, Thresholds(ids_per_address=3))] == ["R1"]


def test_a_warning_says_what_and_how_much() -> None:
    [warning] = warnings_for(replace(QUIET, ids_at_address=7), Thresholds())
    assert (warning.value, warning.threshold) == ("7", "5")
    assert warning.zh
    assert warning.en


def test_r6_fires_below_half_the_median_price() -> None:
    assert [w.rule for w in warnings_for(replace(QUIET, price_ratio=0.49), Thresholds())] == ["R6"]
    assert warnings_for(replace(QUIET, price_ratio=0.5), Thresholds()) == []
    assert warnings_for(replace(QUIET, price_ratio=None), Thresholds()) == []  # no median yet


def test_median_of_a_price_histogram() -> None:
    prices = [Decimal("100")] * 15 + [Decimal("30")] * 3 + [Decimal("500")] * 2
    histogram: dict[int, int] = {}
    for price in prices:
        histogram[price_bucket(price)] = histogram.get(price_bucket(price), 0) + 1
    median = median_price(histogram, 20)
    assert median is not None
    assert 95 < median < 110  # within the 10 % bucket of 100
    assert median_price(histogram, 21) is None  # too few declarations to trust


def test_latin_letters_in_an_address_count_in_lower_case() -> None:
    assert normalise_address("杭州市西湖区文三路1号B座") == "杭州西湖文三路1号b座"
    assert normalise_address("杭州市西湖区文三路1号b座") == normalise_address("杭州市西湖区文三路1号Ｂ座")


def test_cheap_prices_have_their_own_buckets_down_to_a_cent() -> None:
    assert price_bucket(Decimal("0.5")) < price_bucket(Decimal("1")) < price_bucket(Decimal("1.2"))
    assert price_bucket(Decimal("0.001")) == price_bucket(Decimal("0")) == price_bucket(Decimal("0.01"))
    assert price_bucket(Decimal("0.02")) > price_bucket(Decimal("0.01"))


@pytest.mark.parametrize(
    ("histogram", "bucket"),
    [
        ({10: 10, 20: 10}, 10),  # an even count: the lower middle
        ({10: 10, 20: 11}, 20),
        ({10: 8, 20: 12}, 20),
        ({10: 5, 20: 5, 30: 10}, 20),  # counts accumulate across buckets
        ({30: 10, 10: 5, 20: 5}, 20),  # in price order, whatever the order given
    ],
)
def test_the_median_bucket_is_where_half_the_declarations_are_reached(histogram: dict[int, int], bucket: int) -> None:
    assert median_price(histogram, 20) == PRICE_STEP ** (bucket + 0.5)


@pytest.mark.parametrize(
    ("signals", "value", "threshold"),
    [
        (replace(QUIET, ids_at_address=6), "6", "5"),
        (replace(QUIET, addresses_of_id=5), "5", "4"),
        (replace(QUIET, ids_at_phone=4), "4", "3"),
        (replace(QUIET, orders_of_id_day=6), "6 orders", "5"),
        (replace(QUIET, platforms_of_id_day=4), "4 platforms", "3"),
        (replace(QUIET, quota_used=Decimal("23400")), "0.90", "0.8"),
        (replace(QUIET, price_ratio=0.314), "0.31", "0.5"),
    ],
)
def test_each_warning_carries_its_figure_and_threshold(signals: PurchaseSignals, value: str, threshold: str) -> None:
    [warning] = warnings_for(signals, Thresholds())
    assert (warning.value, warning.threshold) == (value, threshold)
    assert (warning.zh, warning.en) == RULES[warning.rule]


def test_no_annual_limit_known_raises_no_quota_warning() -> None:
    assert warnings_for(replace(QUIET, annual_limit=Decimal("0")), Thresholds()) == []


# --- R7 and R8 (new rules) ---------------------------------------------------------------------------------


def test_r7_fires_at_the_tenth_buyer_paying_one_platform_in_one_second() -> None:
    assert [w.rule for w in warnings_for(replace(QUIET, ids_at_pay_second=10), Thresholds())] == ["R7"]
    assert warnings_for(replace(QUIET, ids_at_pay_second=9), Thresholds()) == []
    [warning] = warnings_for(replace(QUIET, ids_at_pay_second=12), Thresholds(ids_per_pay_second=4))
    assert (warning.rule, warning.value, warning.threshold) == ("R7", "12", "4")
    assert warning.zh
    assert warning.en
    assert QUIET.ids_at_pay_second == 1  # a purchase without a counted payment second is one buyer alone


def test_r7_comes_after_the_purchase_rules() -> None:
    loud = replace(QUIET, ids_at_address=5, price_ratio=0.1, ids_at_pay_second=10)
    assert [w.rule for w in warnings_for(loud, Thresholds())] == ["R1", "R6", "R7"]


def test_r8_flags_an_enterprise_over_twice_its_peers_median() -> None:
    peers = {f"S{k}": PartyRates(100, rate) for k, rate in enumerate((0.01, 0.02, 0.03, 0.02))}
    found = enterprise_outliers(peers | {"BAD": PartyRates(50, 0.05), "EDGE": PartyRates(50, 0.04)})
    assert sorted(found) == ["BAD"]  # the median of BAD's peers is 0.02 (EDGE among them): 0.05 > 0.04
    warning = found["BAD"]
    assert (warning.rule, warning.value, warning.threshold) == ("R8", "0.0500", "2.0 × 0.0200")
    assert enterprise_outliers(peers | {"BAD": PartyRates(50, 0.05)}, factor=3.0) == {}


def test_r8_needs_records_and_peers() -> None:
    assert enterprise_outliers({"ALONE": PartyRates(500, 0.9)}) == {}  # nobody to compare with
    few = {"S1": PartyRates(100, 0.0), "NEW": PartyRates(19, 1.0)}
    assert enterprise_outliers(few) == {}  # 19 records make no rate
    assert sorted(enterprise_outliers(few, min_records=19)) == ["NEW"]
    # A peer with too few records has no rate: it does not pull the median down.
    quiet = {"S1": PartyRates(100, 0.02), "S2": PartyRates(19, 0.0), "BAD": PartyRates(100, 0.03)}
    assert enterprise_outliers(quiet) == {}


def test_r8_passes_over_a_small_enterprise_to_the_next() -> None:
    quiet = {f"S{k}": PartyRates(100, 0.02) for k in range(5)}
    # The enterprise with too few records comes first: the ones after it are still judged.
    assert sorted(enterprise_outliers({"NEW": PartyRates(3, 1.0)} | quiet | {"BAD": PartyRates(100, 0.10)})) == ["BAD"]


def test_r8_counts_a_peer_with_exactly_the_minimum_records() -> None:
    peers = {f"S{k}": PartyRates(20, 0.02) for k in range(5)}
    assert sorted(enterprise_outliers(peers | {"BAD": PartyRates(100, 0.10)}, min_records=20)) == ["BAD"]
