"""How many deliveries one subscription may have in flight from a worker: its allowance, adapted to how its
endpoint answers (additive increase, multiplicative decrease, as TCP paces a connection).

It starts at ``SW_WEBHOOK_SUBSCRIPTION_IN_FLIGHT``, the floor: an endpoint the worker knows nothing of, or one
that hangs, holds at most that many slots. Each answer in time (a 2xx within ``FAST_MS``) adds one, up to
``SW_WEBHOOK_SUBSCRIPTION_IN_FLIGHT_MAX``: a fast endpoint is sent to as fast as it answers, where a fixed 4
held one subscription to about 150 events/s whatever its speed. A slow success takes one back; a failure
(an error status, a refused connection, a timeout) halves it. An endpoint that turns from fast to hanging
holds at most the ceiling for one timeout, then drops to the floor within a few failures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

FAST_MS = 1000  # an answer within this counts as in time


def next_allowance(current: float, delivered: bool, duration_ms: int, floor: int, ceiling: int) -> float:
    if not delivered:
        return max(float(floor), current / 2)
    if duration_ms <= FAST_MS:
        return min(float(ceiling), current + 1)
    return max(float(floor), current - 1)


class Allowances(Mapping[uuid.UUID, int]):
    """Each subscription's allowance in this worker (the floor for one not seen yet)."""

    def __init__(self, floor: int, ceiling: int) -> None:
        self.floor, self.ceiling = floor, max(floor, ceiling)
        self._current: dict[uuid.UUID, float] = {}

    def __getitem__(self, subscription_id: uuid.UUID) -> int:
        return int(self._current.get(subscription_id, self.floor))

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self._current)

    def __len__(self) -> int:
        return len(self._current)

    def answered(self, subscription_id: uuid.UUID, delivered: bool, duration_ms: int) -> None:
        current = self._current.get(subscription_id, float(self.floor))
        updated = next_allowance(current, delivered, duration_ms, self.floor, self.ceiling)
        if updated <= self.floor:
            self._current.pop(subscription_id, None)  # back at the floor: nothing to remember
        else:
            self._current[subscription_id] = updated
