"""Pure tests of the declare stage's decision (app/rules/supervision.py): credit levels, warnings, blocking and
seeded sampling — and, over 10,000+ simulated purchases per level, rates within tolerance of the profiles."""

from __future__ import annotations

import math
import uuid
from decimal import Decimal

import pytest

from app.rules.credit import CreditLevel, default_profiles
from app.rules.risk import Warning
from app.rules.supervision import decide, sampling_draw

L = CreditLevel
PROFILES = default_profiles()
REGULAR = {"platform": L.REGULAR, "seller": L.REGULAR, "carrier": L.REGULAR}
R1 = Warning("R1", "同一收货地址关联的订购人过多", "Too many buyer IDs ship to one address", "6", "5")
SEED = 20261207


@pytest.mark.parametrize("level", list(CreditLevel))
def test_inspection_rate_per_level_is_the_profiles_over_many_purchases(level: CreditLevel) -> None:
    n = 12_000
    levels = {"platform": L.REGULAR, "seller": level, "carrier": L.REGULAR}
    if level in (L.ADVANCED_CERTIFIED, L.CERTIFIED):
        levels = dict.fromkeys(levels, level)  # the strictest party sets the rate: all AEO to see the AEO rate
    ids = [str(uuid.UUID(int=(SEED << 64) + k)) for k in range(n)]
    inspected = sum(decide(i, levels, PROFILES, [], SEED).action == "inspect" for i in ids)
    p = float(PROFILES[level].inspection_rate)
    # Four standard deviations of a binomial share (and at least one purchase): fails by chance ~1 in 15,000.
    tolerance = max(4 * math.sqrt(p * (1 - p) / n), 1 / n)
    assert abs(inspected / n - p) <= tolerance, (level, inspected / n, p)


def test_the_strictest_party_sets_the_rate() -> None:
    levels = {"platform": L.ADVANCED_CERTIFIED, "seller": L.DISHONEST, "carrier": L.CERTIFIED}
    decision = decide("r-1", levels, PROFILES, [], SEED)
    assert decision.rate == PROFILES[L.DISHONEST].inspection_rate


def test_sampling_is_reproducible_and_seeded() -> None:
    first = [decide(f"r-{k}", REGULAR, PROFILES, [], 1).action for k in range(2000)]
    assert first == [decide(f"r-{k}", REGULAR, PROFILES, [], 1).action for k in range(2000)]
    assert first != [decide(f"r-{k}", REGULAR, PROFILES, [], 2).action for k in range(2000)]


def test_a_sampled_purchase_says_which_party_and_rate() -> None:
    record = next(f"r-{k}" for k in range(10_000) if sampling_draw(SEED, f"r-{k}") < 0.0244)
    decision = decide(record, REGULAR, PROFILES, [], SEED)
    assert decision.action == "inspect"
    assert decision.reasons == [{"code": "CREDIT_SAMPLED", "party": "platform", "level": "regular", "rate": "0.0244"}]
    view = decision.view()
    assert (view["decision"], view["rate"], view["levels"]["seller"]) == ("inspect", "0.0244", "regular")


def test_a_warning_inspects_unless_configured_not_to() -> None:
    record = next(f"r-{k}" for k in range(10_000) if sampling_draw(SEED, f"r-{k}") > 0.5)
    warned = decide(record, REGULAR, PROFILES, [R1], SEED)
    assert (warned.action, [r["code"] for r in warned.reasons]) == ("inspect", ["WARNING_R1"])
    told_only = decide(record, REGULAR, PROFILES, [R1], SEED, inspect_on_warning=False)
    assert (told_only.action, [r["code"] for r in told_only.reasons]) == ("release", ["WARNING_R1"])
    assert decide(record, REGULAR, PROFILES, [], SEED).action == "release"


def test_seriously_dishonest_blocks_only_when_configured() -> None:
    levels = REGULAR | {"carrier": L.SERIOUSLY_DISHONEST}
    assert decide("r-1", levels, PROFILES, [], SEED).action == "inspect"  # rate 1
    blocking = default_profiles(block_seriously_dishonest=True)
    blocked = decide("r-1", levels, blocking, [], SEED)
    assert blocked.action == "block"
    assert blocked.reasons[0] | {"zh": ""} == {
        "code": "CREDIT_BLOCKED",
        "party": "carrier",
        "level": "seriously_dishonest",
        "zh": "",
    }


def test_zero_rate_never_samples() -> None:
    none = default_profiles(regular=Decimal("0"))
    assert all(decide(f"r-{k}", REGULAR, none, [], SEED).action == "release" for k in range(3000))


def test_every_decision_keeps_its_rate_draw_and_levels() -> None:
    blocking = default_profiles(block_seriously_dishonest=True)
    worst = REGULAR | {"carrier": L.SERIOUSLY_DISHONEST}
    released = next(f"r-{k}" for k in range(10_000) if sampling_draw(SEED, f"r-{k}") > 0.5)
    for decision, levels, rate in (
        (decide("r-1", worst, blocking, [], SEED), worst, Decimal("1")),
        (decide("r-1", REGULAR, PROFILES, [R1], SEED), REGULAR, Decimal("0.0244")),
        (decide(released, REGULAR, PROFILES, [], SEED), REGULAR, Decimal("0.0244")),
    ):
        assert (decision.rate, decision.levels) == (rate, levels)
        assert decision.draw == sampling_draw(SEED, "r-1" if decision.action != "release" else released)


def test_a_blocked_purchase_says_why_in_chinese() -> None:
    blocking = default_profiles(block_seriously_dishonest=True)
    decision = decide("r-1", REGULAR | {"seller": L.SERIOUSLY_DISHONEST}, blocking, [], SEED)
    assert decision.reasons == [
        {"code": "CREDIT_BLOCKED", "party": "seller", "level": "seriously_dishonest", "zh": "严重失信企业,不予放行"}
    ]


def test_a_warning_reason_carries_the_warning_in_both_languages() -> None:
    decision = decide("r-1", REGULAR, PROFILES, [R1], SEED)
    assert decision.reasons == [{"code": "WARNING_R1", "zh": R1.zh, "en": R1.en, "value": "6"}]


def test_a_draw_equal_to_the_rate_is_not_sampled() -> None:
    # The draw is in [0, 1) and a record is sampled when it falls under the rate, so the share sampled is the rate.
    draw = sampling_draw(SEED, "r-1")
    profiles = default_profiles(regular=Decimal(draw))  # the float's exact value
    assert decide("r-1", REGULAR, profiles, [], SEED).action == "release"
    assert decide("r-1", REGULAR, default_profiles(regular=Decimal(draw) * 2), [], SEED).action == "inspect"


def test_the_recorded_view() -> None:
    decision = decide("r-1", REGULAR, PROFILES, [R1], SEED)
    assert decision.view() == {
        "decision": "inspect",
        "rate": "0.0244",
        "draw": round(sampling_draw(SEED, "r-1"), 6),
        "levels": dict.fromkeys(REGULAR, "regular"),
        "reasons": [{"code": "WARNING_R1", "zh": R1.zh, "en": R1.en, "value": "6"}],
    }


@pytest.mark.parametrize("zero", ["0", "0.000", "-0"])
def test_a_zero_rate_is_recorded_as_0(zero: str) -> None:
    profiles = default_profiles(regular=Decimal(zero))
    assert decide("r-1", REGULAR, profiles, [], SEED).view()["rate"] == "0"
