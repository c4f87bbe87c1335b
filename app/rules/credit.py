"""Customs credit levels and the supervision each one gets (信用等级从劣到优、监管力度从严到松). Pure.

GACC Order No. 282 (in force 2026-04-01) has five levels. Its inspection ratios are not published; the
defaults follow the order it replaced (No. 251): AEO enterprises' average inspection rate below 20 % of
regular enterprises', 失信 at 80 % or more. 2019 averages for orientation: AEO 0.57 %, regular 2.44 %,
失信 84.76 %. Every rate is configuration (``Settings.supervision_*``) and officials may change the profiles
at run time (``PUT /api/v1/risk/profiles``) within the bounds that order sets (``profile_problems``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class CreditLevel(StrEnum):
    """Best first."""

    ADVANCED_CERTIFIED = "advanced_certified"  # 高级认证企业 (AEO)
    CERTIFIED = "certified"  # 认证企业 (AEO)
    REGULAR = "regular"  # 常规企业
    DISHONEST = "dishonest"  # 失信企业
    SERIOUSLY_DISHONEST = "seriously_dishonest"  # 严重失信企业


LEVEL_NAMES_ZH = {
    CreditLevel.ADVANCED_CERTIFIED: "高级认证企业",
    CreditLevel.CERTIFIED: "认证企业",
    CreditLevel.REGULAR: "常规企业",
    CreditLevel.DISHONEST: "失信企业",
    CreditLevel.SERIOUSLY_DISHONEST: "严重失信企业",
}
AEO_LEVELS = (CreditLevel.ADVANCED_CERTIFIED, CreditLevel.CERTIFIED)
DISHONEST_LEVELS = (CreditLevel.DISHONEST, CreditLevel.SERIOUSLY_DISHONEST)
# Order No. 251's bounds, relative to the regular enterprises' rate and absolute.
AEO_MAX_SHARE_OF_REGULAR = Decimal("0.2")
DISHONEST_MIN_RATE = Decimal("0.8")
UNIT = Decimal("1")


@dataclass(frozen=True)
class SupervisionProfile:
    """How strictly declarations of an enterprise of this level are supervised."""

    level: CreditLevel
    inspection_rate: Decimal  # share of its declarations inspected, 0..1
    block: bool = False  # declarations naming it are refused outright (严重失信 may be configured to)


Profiles = Mapping[CreditLevel, SupervisionProfile]


def profile_problems(profiles: Profiles) -> list[str]:
    """What is wrong with a set of profiles: every level present, rates within 0..1, AEO levels at most
    20 % of the regular rate, 失信 levels at least 80 % — and never stricter for a better level.

    >>> from app.rules.credit import default_profiles
    >>> profile_problems(default_profiles())
    []
    """
    problems = [f"no profile for {level.value}" for level in CreditLevel if level not in profiles]
    if problems:
        return problems
    for profile in profiles.values():
        if not Decimal("0") <= profile.inspection_rate <= UNIT:
            problems.append(f"{profile.level.value}: inspection rate must be within 0 and 1")
    regular = profiles[CreditLevel.REGULAR].inspection_rate
    for level in AEO_LEVELS:
        if profiles[level].inspection_rate > regular * AEO_MAX_SHARE_OF_REGULAR:
            problems.append(f"{level.value}: an AEO level's rate must be at most 20 % of the regular rate")
    for level in DISHONEST_LEVELS:
        if profiles[level].inspection_rate < DISHONEST_MIN_RATE:
            problems.append(f"{level.value}: a 失信 level's rate must be at least 0.8")
    ordered = list(CreditLevel)
    for better, worse in itertools.pairwise(ordered):
        if profiles[better].inspection_rate > profiles[worse].inspection_rate:
            problems.append(f"{better.value} is inspected more than {worse.value}")
    for level in (CreditLevel.ADVANCED_CERTIFIED, CreditLevel.CERTIFIED, CreditLevel.REGULAR):
        if profiles[level].block:
            problems.append(f"{level.value}: only 失信 levels may be blocked")
    return problems


def default_profiles(
    regular: Decimal = Decimal("0.0244"),
    certified_share: Decimal = Decimal("0.2"),
    advanced_share: Decimal = Decimal("0.1"),
    dishonest: Decimal = Decimal("0.85"),
    seriously_dishonest: Decimal = Decimal("1"),
    block_seriously_dishonest: bool = False,
) -> dict[CreditLevel, SupervisionProfile]:
    """The profiles from a regular rate, the AEO levels as shares of it, and the 失信 rates.

    >>> default_profiles()[CreditLevel.CERTIFIED].inspection_rate
    Decimal('0.00488')
    """
    return {
        CreditLevel.ADVANCED_CERTIFIED: SupervisionProfile(CreditLevel.ADVANCED_CERTIFIED, regular * advanced_share),
        CreditLevel.CERTIFIED: SupervisionProfile(CreditLevel.CERTIFIED, regular * certified_share),
        CreditLevel.REGULAR: SupervisionProfile(CreditLevel.REGULAR, regular),
        CreditLevel.DISHONEST: SupervisionProfile(CreditLevel.DISHONEST, dishonest),
        CreditLevel.SERIOUSLY_DISHONEST: SupervisionProfile(
            CreditLevel.SERIOUSLY_DISHONEST, seriously_dishonest, block=block_seriously_dishonest
        ),
    }


@dataclass(frozen=True)
class EnterpriseRecord:
    """An enterprise's own record over a period, and its peers' medians, for the local score."""

    records: int
    mismatch_rate: float
    rejection_rate: float
    peer_mismatch_median: float
    peer_rejection_median: float
    complaints_upheld: int = 0
    penalties: int = 0


WATCH_BELOW = 60  # a local score under this puts the enterprise on the officials' watch list


def local_score(record: EnterpriseRecord) -> int:
    """0–100 from the enterprise's own record: its mismatch and rejection rates against its peers' medians
    (each worth up to 30 points), upheld complaints (10 each, up to 20) and penalties (10 each, up to 20).
    It may put the enterprise on a watch list; it never changes the customs level.

    >>> local_score(EnterpriseRecord(100, 0.01, 0.01, 0.01, 0.01))
    100
    >>> local_score(EnterpriseRecord(100, 0.04, 0.01, 0.01, 0.01, complaints_upheld=1))
    60
    """

    def against_peers(rate: float, median: float) -> float:
        if rate <= median:
            return 0.0
        # 30 points lost at 4× the peers' median (or at 10 % when the peers have none).
        worst = 4 * median if median > 0 else 0.1
        return min(30.0, 30.0 * (rate - median) / max(worst - median, 1e-9))

    lost = against_peers(record.mismatch_rate, record.peer_mismatch_median)
    lost += against_peers(record.rejection_rate, record.peer_rejection_median)
    lost += min(20, 10 * record.complaints_upheld) + min(20, 10 * record.penalties)
    return max(0, round(100 - lost))


R8_FACTOR = 2.0  # R8: a rejection rate over this many times the peers' median


def rejection_outlier(rate: float, peer_median: float, has_peers: bool, factor: float = R8_FACTOR) -> bool:
    """R8: the enterprise's rejection rate over the last 7 days is above ``factor`` × its peers' median (with
    peers to compare with; when their median is 0, any rejection is above it).

    >>> rejection_outlier(0.05, 0.02, True), rejection_outlier(0.03, 0.02, True), rejection_outlier(0.5, 0, False)
    (True, False, False)
    """
    return has_peers and rate > factor * peer_median
