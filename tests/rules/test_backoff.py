"""The retry schedule (app/rules/backoff.py): full jitter between 0 and the exponential ceiling, Retry-After a floor."""

from __future__ import annotations

import random

import pytest

from app.rules.backoff import backoff_delay


class Extreme(random.Random):
    """Draws the top (or the bottom) of the range it is given, and remembers the range."""

    def __init__(self, top: bool) -> None:
        super().__init__(0)
        self.top = top
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return b if self.top else a


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 2.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (7, 100.0), (40, 100.0)],
)
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    rng = Extreme(top=True)
    assert backoff_delay(attempt, 2.0, 100.0, None, rng) == ceiling
    assert rng.ranges == [(0, ceiling)]


def test_the_jitter_reaches_down_to_zero() -> None:
    assert backoff_delay(5, 2.0, 100.0, None, Extreme(top=False)) == 0


@pytest.mark.parametrize(("retry_after", "expected"), [(5.0, 5.0), (0.5, 0.5), (250.0, 100.0)])
def test_retry_after_is_a_floor_no_higher_than_the_cap(retry_after: float, expected: float) -> None:
    assert backoff_delay(1, 2.0, 100.0, retry_after, Extreme(top=False)) == expected


def test_a_draw_above_retry_after_stands() -> None:
    assert backoff_delay(4, 2.0, 100.0, 3.0, Extreme(top=True)) == 16.0


def test_without_a_generator_the_module_random_is_used() -> None:
    random.seed(7)
    expected = random.Random(7).uniform(0, 8.0)
    assert backoff_delay(3, 2.0, 100.0) == expected
