"""The staged-pipeline figures' pure helpers (bench/pipeline.py): the drain rate from polls of the pending count,
the verdict on a paced run's backlog, and the sustained-rate search. No database, no timing."""

from __future__ import annotations

import pytest

from bench.pipeline import backlog_verdict, drain_rate, next_rate, slope


def test_drain_rate_starts_at_the_first_shrink_and_stops_at_empty() -> None:
    # 10,000 pending; the matcher process takes 2 s to start and do its first batch (500), then 1,000/s.
    samples = [(0.0, 10_000), (1.0, 10_000), (2.0, 9_500), (3.0, 8_500), (11.0, 500), (11.5, 0), (12.0, 0)]
    figure = drain_rate(samples)
    assert figure["backlog"] == 10_000
    assert figure["measured_docs"] == 9_500
    assert figure["seconds"] == pytest.approx(9.5)
    assert figure["docs_per_s"] == pytest.approx(1000.0)
    assert figure["first_batch_s"] == pytest.approx(2.0)


def test_drain_rate_without_progress_or_end_has_no_figure() -> None:
    assert drain_rate([])["docs_per_s"] is None
    assert drain_rate([(0.0, 100), (1.0, 100)])["docs_per_s"] is None  # never shrank
    assert drain_rate([(0.0, 100), (1.0, 50)])["docs_per_s"] is None  # never emptied
    assert drain_rate([(0.0, 0)])["docs_per_s"] is None  # nothing to drain


def test_slope_is_least_squares() -> None:
    assert slope([(0.0, 0), (1.0, 10), (2.0, 20)]) == pytest.approx(10.0)
    assert slope([(0.0, 5)]) == 0.0
    assert slope([(1.0, 5), (1.0, 9)]) == 0.0


def test_a_saw_toothed_flat_backlog_holds() -> None:
    # The matcher takes 500 at a time: the backlog swings between ~0 and ~450 without a trend.
    samples = [(t * 0.25, 450 if i % 4 == 0 else 50) for i, t in enumerate(range(60))]
    verdict = backlog_verdict(samples, offered=900.0, achieved=895.0, window_s=15.0, batch_size=500)
    assert verdict.holds, verdict


def test_a_growing_backlog_or_a_short_accept_does_not_hold() -> None:
    growing = [(t * 0.25, int(t * 0.25 * 100)) for t in range(60)]  # +100/s over 15 s: 1,500 > 500
    verdict = backlog_verdict(growing, offered=600.0, achieved=600.0, window_s=15.0, batch_size=500)
    assert not verdict.holds
    assert verdict.growth == pytest.approx(1500.0, rel=0.01)
    flat = [(t * 0.25, 10) for t in range(60)]
    short = backlog_verdict(flat, offered=600.0, achieved=500.0, window_s=15.0, batch_size=500)
    assert not short.holds
    assert "offered" in short.reason


def test_next_rate_searches_up_down_then_between() -> None:
    assert next_rate([100.0], [], ceiling=1000.0) == pytest.approx(130.0)
    assert next_rate([900.0], [], ceiling=1000.0) == pytest.approx(1000.0)  # capped
    assert next_rate([1000.0], [], ceiling=1000.0) == pytest.approx(1000.0)  # at the ceiling: stays
    assert next_rate([], [130.0], ceiling=1000.0) == pytest.approx(100.0)
    assert next_rate([100.0], [400.0], ceiling=1000.0) == pytest.approx(200.0)
    # A failure below the best success (noise) does not bound the search.
    assert next_rate([100.0], [80.0], ceiling=1000.0) == pytest.approx(130.0)
    with pytest.raises(ValueError, match="no run yet"):
        next_rate([], [], ceiling=1.0)
