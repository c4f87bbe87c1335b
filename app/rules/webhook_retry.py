"""What a failed webhook delivery becomes (pure): another try after a full-jitter backoff, or dead once it has
failed for longer than the retry window (at least a day: a receiver's weekend outage must not lose events)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from app.rules.backoff import backoff_delay


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float
    cap_s: float
    retry_for_s: float
    failing_after: int  # consecutive failures after which the subscription shows as failing


@dataclass(frozen=True)
class AfterFailure:
    outcome: Literal["retry", "dead"]
    next_attempt_at: datetime | None


def after_failure(
    policy: RetryPolicy, attempts: int, first_failed_at: datetime, now: datetime, rng: random.Random | None = None
) -> AfterFailure:
    """Attempt number ``attempts`` (1-based) failed; the delivery first failed at ``first_failed_at``.

    >>> from datetime import UTC
    >>> policy = RetryPolicy(base_s=5, cap_s=3600, retry_for_s=86400, failing_after=5)
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> after_failure(policy, 3, t0, t0 + timedelta(hours=1)).outcome
    'retry'
    >>> after_failure(policy, 40, t0, t0 + timedelta(hours=24, seconds=1)).outcome
    'dead'
    """
    if (now - first_failed_at).total_seconds() >= policy.retry_for_s:
        return AfterFailure("dead", None)
    delay = backoff_delay(attempts, policy.base_s, policy.cap_s, rng=rng)
    return AfterFailure("retry", now + timedelta(seconds=delay))


def is_failing(policy: RetryPolicy, consecutive_failures: int) -> bool:
    return consecutive_failures >= policy.failing_after
