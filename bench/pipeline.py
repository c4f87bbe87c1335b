"""Pure helpers of the staged-pipeline figures (bench/run.py): the drain rate of a match backlog, whether a
paced run's backlog grew, and the next rate of the sustained-rate search. No I/O: tests/test_bench_pipeline.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Sample = tuple[float, int]  # (seconds, pending submissions)


def drain_rate(samples: Sequence[Sample]) -> dict[str, float | int | None]:
    """The matcher's rate from polls of the pending count while it drains a backlog.

    The clock starts at the first poll that sees the backlog shrink (so the matcher process's start — imports,
    first connection — does not count, and neither does the first micro-batch, which is already done then) and
    stops at the first poll that sees it empty: rate = what was pending at the first shrink ÷ the time between.
    """
    if not samples:
        return {"docs_per_s": None, "backlog": 0, "measured_docs": 0, "seconds": None, "first_batch_s": None}
    t0, initial = samples[0]
    first = next(((t, n) for t, n in samples if n < initial), None)
    empty = next((t for t, n in samples if n == 0), None)
    if first is None or empty is None or empty <= first[0]:
        return {"docs_per_s": None, "backlog": initial, "measured_docs": 0, "seconds": None, "first_batch_s": None}
    seconds = empty - first[0]
    return {
        "docs_per_s": round(first[1] / seconds, 1),
        "backlog": initial,
        "measured_docs": first[1],
        "seconds": round(seconds, 3),
        "first_batch_s": round(first[0] - t0, 3),
    }


def slope(samples: Sequence[Sample]) -> float:
    """Least-squares slope (pending per second) of the samples; 0 with fewer than two distinct times."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var


@dataclass(frozen=True)
class Verdict:
    holds: bool
    growth_per_s: float
    growth: float  # over the window, from the slope
    tolerance: float
    achieved_ratio: float
    reason: str


def backlog_verdict(
    samples: Sequence[Sample], offered: float, achieved: float, window_s: float, batch_size: int
) -> Verdict:
    """Did a paced run at ``offered`` documents/s hold: the accept path took what was offered (≥ 95 %), and the
    match backlog did not grow over the window (samples taken inside it)?

    The backlog is saw-toothed (the matcher takes up to ``batch_size`` at a time, arrivals pile up while it
    works), so single samples are noisy: growth is the least-squares slope over the window, and it may add up
    to one micro-batch or half a second of arrivals, whichever is more, without counting as growing."""
    growth_per_s = slope(samples)
    growth = growth_per_s * window_s
    tolerance = max(float(batch_size), 0.5 * offered)
    ratio = achieved / offered if offered > 0 else 0.0
    if ratio < 0.95:
        return Verdict(False, growth_per_s, growth, tolerance, ratio, f"accepted {ratio:.0%} of the offered rate")
    if growth > tolerance:
        return Verdict(False, growth_per_s, growth, tolerance, ratio, f"backlog grew by {growth:,.0f}")
    return Verdict(True, growth_per_s, growth, tolerance, ratio, "held")


def next_rate(held: Sequence[float], failed: Sequence[float], ceiling: float, step: float = 1.3) -> float:
    """The next offered rate of the search for the highest rate that holds: above the best that held (by
    ``step``, at most ``ceiling``) until one fails, below the lowest failure until one holds, then between."""
    best = max(held, default=None)
    worst = min((f for f in failed if best is None or f > best), default=None)
    if best is None and worst is None:
        raise ValueError("no run yet: start from an estimate")
    if best is None:
        assert worst is not None
        return worst / step
    if worst is None:
        return min(best * step, ceiling) if best < ceiling else best
    return math.sqrt(best * worst)
