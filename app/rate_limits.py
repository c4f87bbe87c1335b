"""An in-process fixed-window limiter for the public endpoints (no key, so no principal to meter).

Per process: with several API processes a client gets the limit once per process. Shared rate limiting (one
budget across processes) is a separate piece of work; this keeps the public endpoints from being a free
oracle or a spam sink in the meantime.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import RateLimited


@dataclass
class FixedWindowLimiter:
    limit: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # key → (window number, count)

    def hit(self, key: str) -> None:
        """Count one request for ``key``; 429 when the window's budget is spent."""
        now = self.clock()
        window = int(now // self.window_s)
        current, count = self._counts.get(key, (window, 0))
        if current != window:
            count = 0
        if count >= self.limit:
            retry_after = int((window + 1) * self.window_s - now) + 1
            raise RateLimited("Too many requests; try again later", retry_after_s=retry_after)
        self._counts[key] = (window, count + 1)
        if len(self._counts) > 100_000:  # forget stale windows rather than grow without bound
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
