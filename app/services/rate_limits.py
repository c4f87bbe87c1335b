"""Counting requests per enterprise and route class — and per client and ID number on the public routes —
shared by every API process.

With ``SW_REDIS_URL`` the counters live in Redis: one round trip per request (a Lua script that increments
the window's counter and sets its expiry), atomic across any number of API processes. Without it (embedded
mode, one process) they live in this process's memory. Redis rather than PostgreSQL: a counter row per
enterprise updated on every request would be the hottest row of the database, serialising that enterprise's
requests on a row lock and adding a write (and WAL) to every read; Redis does an INCR in microseconds and
forgets old windows by itself.

If Redis cannot be reached the request is let through (and logged): the limit protects fairness, and a
limiter outage must not become an outage of intake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.rules.rate_limits import allowed, current_window

log = logging.getLogger(__name__)

_COUNT_IN_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: int, window_s: int) -> Verdict: ...

    async def aclose(self) -> None: ...


@dataclass
class LocalRateLimiter:
    """One process's counters (embedded mode), per window size: the enterprises' minute and the public
    routes' hour and day are counted side by side, each forgetting its own past windows."""

    clock: Callable[[], float] = time.time
    # window size → (index of the current window of that size, counts in it by bucket)
    _windows: dict[int, tuple[int, dict[str, int]]] = field(default_factory=dict)

    async def hit(self, bucket: str, limit: int, window_s: int) -> Verdict:
        window = current_window(self.clock(), window_s)
        index, counts = self._windows.get(window_s, (window.index, {}))
        if index != window.index:  # a new window of this size: its old counts are over
            counts = {}
        self._windows[window_s] = (window.index, counts)
        count = counts.get(bucket, 0) + 1
        counts[bucket] = count
        return Verdict(allowed(count, limit), window.retry_after_s)

    async def aclose(self) -> None:
        return None


class RedisRateLimiter:
    """Counters in Redis, shared by every API process."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time, prefix: str = "sw:rate") -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.count = self.client.register_script(_COUNT_IN_WINDOW)
        self.clock = clock
        self.prefix = prefix

    async def hit(self, bucket: str, limit: int, window_s: int) -> Verdict:
        window = current_window(self.clock(), window_s)
        key = f"{self.prefix}:{bucket}:{window_s}:{window.index}"  # window sizes never share a counter
        try:
            count = int(await self.count(keys=[key], args=[window_s + 1]))
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked, Redis unavailable: %s", exc)
            return Verdict(True, window.retry_after_s)
        return Verdict(allowed(count, limit), window.retry_after_s)

    async def aclose(self) -> None:
        await self.client.aclose()


async def refusal(limiter: RateLimiter, bucket: str, limit: int, window_s: int, hold_s: float = 0.0) -> Verdict | None:
    """Count one request of ``bucket``: None when it is within ``limit`` (0: no limit, nothing counted), else the
    refusing verdict — returned only after ``hold_s`` (never past its Retry-After), so that a loop which ignores
    Retry-After cannot be refused as fast as it asks (tests/soak/test_runaway_sender.py)."""
    if limit == 0:
        return None
    verdict = await limiter.hit(bucket, limit, window_s)
    if verdict.allowed:
        return None
    if hold_s > 0:
        await asyncio.sleep(min(verdict.retry_after_s, hold_s))
    return verdict


def build_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else LocalRateLimiter()
