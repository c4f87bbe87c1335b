"""The declare stage's decision for one declaration: release, inspect, or block — and why. Pure.

The parties' credit levels (platform, seller, carrier) set the sampling rate: the strictest profile among
them, since one poorly rated party is enough for the purchase to be watched more closely. A warning raised
by the purchase inspects it (configurable). The sample is a hash of (seed, record id), not ``random()``:
the same record under the same seed is always decided the same way, and a run can be reproduced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from app.rules.credit import CreditLevel, Profiles
from app.rules.risk import Warning

Action = Literal["release", "inspect", "block"]
PARTIES = ("platform", "seller", "carrier")


@dataclass(frozen=True)
class Decision:
    action: Action
    rate: Decimal  # the sampling rate that applied
    draw: float  # the record's fixed draw in [0, 1)
    levels: Mapping[str, CreditLevel]
    reasons: list[dict[str, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """As written on the record, its timeline and the agencies' package."""
        return {
            "decision": self.action,
            "rate": str(self.rate.normalize() if self.rate else Decimal("0")),
            "draw": round(self.draw, 6),
            "levels": {party: level.value for party, level in self.levels.items()},
            "reasons": self.reasons,
        }


def sampling_draw(seed: int, record_id: str) -> float:
    """A number in [0, 1) fixed by (seed, record id).

    >>> sampling_draw(0, "r-1") == sampling_draw(0, "r-1") != sampling_draw(1, "r-1")
    True
    """
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(
    record_id: str,
    levels: Mapping[str, CreditLevel],
    profiles: Profiles,
    warnings: Sequence[Warning],
    seed: int,
    inspect_on_warning: bool = True,
) -> Decision:
    """Block when a party's level is configured to block; inspect when a warning was raised (and that is
    configured) or the record's draw falls under the strictest party's rate; release otherwise."""
    strictest = max(levels.items(), key=lambda item: profiles[item[1]].inspection_rate)
    rate = profiles[strictest[1]].inspection_rate
    draw = sampling_draw(seed, record_id)
    blocked = [(party, level) for party, level in levels.items() if profiles[level].block]
    if blocked:
        reasons = [
            {"code": "CREDIT_BLOCKED", "party": party, "level": level.value, "zh": "严重失信企业,不予放行"}
            for party, level in blocked
        ]
        return Decision("block", rate, draw, levels, reasons)
    reasons = [{"code": f"WARNING_{w.rule}", "zh": w.zh, "en": w.en, "value": w.value} for w in warnings]
    if reasons and inspect_on_warning:
        return Decision("inspect", rate, draw, levels, reasons)
    party, level = strictest
    if draw < rate:
        sampled = {"code": "CREDIT_SAMPLED", "party": party, "level": level.value, "rate": str(rate.normalize())}
        return Decision("inspect", rate, draw, levels, [*reasons, sampled])
    return Decision("release", rate, draw, levels, reasons)
