"""What a failed webhook delivery becomes: retried with full jitter inside the retry window, dead after it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from app.rules.webhook_retry import RetryPolicy, after_failure, is_failing

POLICY = RetryPolicy(base_s=5, cap_s=3600, retry_for_s=86400, failing_after=5)
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_retried_with_jitter_under_the_cap_inside_the_window() -> None:
    rng = random.Random(7)
    for attempt in range(1, 40):
        now = T0 + timedelta(hours=attempt / 2)
        plan = after_failure(POLICY, attempt, T0, now, rng)
        assert plan.outcome == "retry"
        assert plan.next_attempt_at is not None
        delay = (plan.next_attempt_at - now).total_seconds()
        assert 0 <= delay <= min(3600, 5 * 2 ** (attempt - 1))


def test_the_jitter_comes_from_the_given_generator() -> None:
    now = T0 + timedelta(hours=1)
    plans = [after_failure(POLICY, 12, T0, now, random.Random(seed)) for seed in (3, 3, 4)]
    assert plans[0] == plans[1] != plans[2]


def test_dead_once_it_has_failed_for_the_whole_window() -> None:
    assert after_failure(POLICY, 3, T0, T0 + timedelta(seconds=86399)).outcome == "retry"
    dead = after_failure(POLICY, 3, T0, T0 + timedelta(seconds=86400))
    assert dead.outcome == "dead"
    assert dead.next_attempt_at is None


def test_failing_after_consecutive_failures() -> None:
    assert not is_failing(POLICY, 4)
    assert is_failing(POLICY, 5)
