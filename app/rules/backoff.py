"""Retry schedule for agency dispatches: full-jitter exponential backoff (pure; the randomness is injected)."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    base_s: float,
    cap_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter (AWS architecture blog): uniform in [0, min(cap, base · 2^(attempt−1))], so that many
    dispatches failing together do not retry together. An agency's ``Retry-After`` is a floor.
    """
    ceiling = min(cap_s, base_s * (2 ** max(attempt - 1, 0)))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, cap_s))
    return delay
