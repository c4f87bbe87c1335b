"""Pure tests of the credit levels' supervision profiles (app/rules/credit.py)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from app.rules.credit import (
    CreditLevel,
    EnterpriseRecord,
    default_profiles,
    local_score,
    profile_problems,
    rejection_outlier,
)

L = CreditLevel


def test_defaults_follow_order_251() -> None:
    profiles = default_profiles()
    regular = profiles[L.REGULAR].inspection_rate
    assert regular == Decimal("0.0244")
    assert profiles[L.ADVANCED_CERTIFIED].inspection_rate <= regular * Decimal("0.2")
    assert profiles[L.CERTIFIED].inspection_rate <= regular * Decimal("0.2")
    assert profiles[L.DISHONEST].inspection_rate >= Decimal("0.8")
    assert not any(p.block for p in profiles.values())
    assert profile_problems(profiles) == []


def test_bounds_are_checked() -> None:
    profiles = default_profiles()
    aeo_too_high = profiles | {L.CERTIFIED: replace(profiles[L.CERTIFIED], inspection_rate=Decimal("0.005"))}
    assert profile_problems(aeo_too_high) == ["certified: an AEO level's rate must be at most 20 % of the regular rate"]
    lenient = profiles | {L.DISHONEST: replace(profiles[L.DISHONEST], inspection_rate=Decimal("0.79"))}
    assert profile_problems(lenient) == ["dishonest: a 失信 level's rate must be at least 0.8"]
    inverted = profiles | {L.DISHONEST: replace(profiles[L.DISHONEST], inspection_rate=Decimal("1"))}
    inverted |= {L.SERIOUSLY_DISHONEST: replace(profiles[L.SERIOUSLY_DISHONEST], inspection_rate=Decimal("0.9"))}
    assert profile_problems(inverted) == ["dishonest is inspected more than seriously_dishonest"]
    blocked_regular = profiles | {L.REGULAR: replace(profiles[L.REGULAR], block=True)}
    assert profile_problems(blocked_regular) == ["regular: only 失信 levels may be blocked"]
    missing = {k: v for k, v in profiles.items() if k != L.REGULAR}
    assert profile_problems(missing) == ["no profile for regular"]
    over_one = profiles | {
        L.SERIOUSLY_DISHONEST: replace(profiles[L.SERIOUSLY_DISHONEST], inspection_rate=Decimal("1.1"))
    }
    assert profile_problems(over_one) == ["seriously_dishonest: inspection rate must be within 0 and 1"]


def test_block_may_be_configured_for_seriously_dishonest() -> None:
    profiles = default_profiles(block_seriously_dishonest=True)
    assert profiles[L.SERIOUSLY_DISHONEST].block
    assert profile_problems(profiles) == []


def test_local_score_against_peers() -> None:
    clean = EnterpriseRecord(200, 0.01, 0.0, 0.02, 0.01)
    assert local_score(clean) == 100
    assert local_score(EnterpriseRecord(200, 0.08, 0.0, 0.02, 0.01)) == 70  # 4× the peers' mismatch median
    worst = EnterpriseRecord(200, 1.0, 1.0, 0.02, 0.01, complaints_upheld=5, penalties=5)
    assert local_score(worst) == 0
    no_peers = EnterpriseRecord(10, 0.05, 0.0, 0.0, 0.0)
    assert local_score(no_peers) == 85  # half of the 10 % that loses 30 points when peers have none


def test_r8_rejection_rate_against_peers() -> None:
    assert rejection_outlier(0.05, 0.02, has_peers=True)
    assert not rejection_outlier(0.04, 0.02, has_peers=True)  # exactly 2× is not above
    assert rejection_outlier(0.01, 0.0, has_peers=True)  # peers reject nothing
    assert not rejection_outlier(0.0, 0.0, has_peers=True)
    assert not rejection_outlier(0.9, 0.0, has_peers=False)


def test_the_bounds_themselves_are_allowed() -> None:
    # A zero rate (never sample), a 失信 rate of exactly 0.8, and two levels inspected alike are all within order 251.
    assert profile_problems(default_profiles(regular=Decimal("0"))) == []
    assert profile_problems(default_profiles(dishonest=Decimal("0.8"))) == []
    assert profile_problems(default_profiles(dishonest=Decimal("1"), seriously_dishonest=Decimal("1"))) == []


def test_each_default_profile_names_its_own_level() -> None:
    assert all(profile.level == level for level, profile in default_profiles().items())


def test_local_score_loses_points_in_proportion_and_each_part_is_capped() -> None:
    assert local_score(EnterpriseRecord(200, 0.02, 0.0, 0.02, 0.01)) == 100  # at the median: nothing lost
    assert local_score(EnterpriseRecord(200, 0.04, 0.0, 0.02, 0.01)) == 90  # 2× the median: a third of 30
    assert local_score(EnterpriseRecord(200, 1.0, 0.0, 0.02, 0.01)) == 70  # far above: 30 at most
    assert local_score(EnterpriseRecord(200, 0.0, 0.0, 0.02, 0.01, complaints_upheld=1)) == 90
    assert local_score(EnterpriseRecord(200, 0.0, 0.0, 0.02, 0.01, complaints_upheld=3)) == 80
    assert local_score(EnterpriseRecord(200, 0.0, 0.0, 0.02, 0.01, penalties=1)) == 90
    assert local_score(EnterpriseRecord(200, 0.0, 0.0, 0.02, 0.01, penalties=3)) == 80
