"""Fault injection for the mock agencies (``SW_MOCK_FAILURE_RATE``, ``SW_MOCK_SLOW_ANSWER_RATE``).

A failing call is, at random, ``unavailable`` (503), ``throttled`` (429 with ``Retry-After: 1``) or ``hang``
(no answer for ``SW_MOCK_HANG_S``, longer than the client's timeout, then 504); it happens before anything is
recorded, so the agency has not answered it. ``slow_answer`` is the "did it land?" case: the agency records its
answer, then holds the reply too long. Draws come from one seeded ``random.Random``: a given seed and request
order give the same faults.
"""

from __future__ import annotations

import random
from enum import StrEnum


class Fault(StrEnum):
    UNAVAILABLE = "unavailable"
    THROTTLED = "throttled"
    HANG = "hang"
    SLOW_ANSWER = "slow_answer"


FAILURES = (Fault.UNAVAILABLE, Fault.THROTTLED, Fault.HANG)


def draw_fault(rng: random.Random, failure_rate: float, slow_answer_rate: float) -> Fault | None:
    """One call's fault: a failure with ``failure_rate``, else a slow answer with ``slow_answer_rate``."""
    if failure_rate > 0 and rng.random() < failure_rate:
        return rng.choice(FAILURES)
    if slow_answer_rate > 0 and rng.random() < slow_answer_rate:
        return Fault.SLOW_ANSWER
    return None
