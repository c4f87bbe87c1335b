"""The read replica (``SW_READ_DATABASE_URL``): which database a read-only request is answered from.

Officials' searches and exports, statistics and the feed may be answered by a streaming replica; everything that
writes, and every read a client makes to see its own write (a record by id, an enterprise's own search, a
``Prefer: wait`` answer), stays on the primary. Each routed request measures the replica's replay lag first —
one short query on the connection it is about to use — and is answered from the primary instead when the replica
is further behind than ``SW_READ_MAX_LAG_S`` or cannot be reached (or with a 503 when ``SW_READ_FALLBACK`` is
off): a replica's answer is at most the lag it reported stale, never wrong. ``X-Read-Source`` and
``X-Read-Lag`` on the answer say which database answered and how stale it may be (docs/scaling.md).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings
from app.db import create_sessionmaker
from app.errors import DomainError

log = logging.getLogger(__name__)

ReplicaHealth = Literal["ok", "lagging", "unreachable"]
# Why the primary answers a read meant for the replica: the replica was behind or away when the read began, or
# it cancelled the read mid-way (a conflict with recovery: app/read_replica_retry.py).
Fallback = ReplicaHealth | Literal["conflict"]

# Seconds the replica's data may be behind the primary's. Caught up (all WAL received is replayed while a WAL
# receiver runs): 0 — an idle primary sends nothing, so the time since the last replayed commit says nothing then.
# Otherwise the time since the last replayed commit, an upper bound (replay only moves forwards); NULL (nothing
# replayed yet) is unknown. Not in recovery (the URL names a primary): 0.
LAG_SQL = text(
    """
    SELECT CASE
        WHEN NOT pg_is_in_recovery() THEN 0::float8
        WHEN EXISTS (SELECT 1 FROM pg_stat_wal_receiver)
             AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8
        ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8
    END
    """
)


class ReplicaUnavailable(DomainError):
    status, code, title = 503, "READ_REPLICA_UNAVAILABLE", "The read replica is not usable; retry later"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retryAfterSeconds=retry_after_s)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ReplicaState:
    health: ReplicaHealth
    lag_s: float | None  # None: unknown (unreachable, or nothing replayed yet)


@dataclass(frozen=True)
class ReadSource:
    """The database a read is answered from, and how stale its answer may be."""

    name: Literal["primary", "replica"]
    sessionmaker: async_sessionmaker[AsyncSession]
    lag_s: float
    fallback: Fallback | None = None  # why the primary answers a read meant for the replica

    def headers(self) -> list[tuple[bytes, bytes]]:
        found = [(b"x-read-source", self.name.encode()), (b"x-read-lag", f"{self.lag_s:.3f}".encode())]
        if self.fallback is not None:
            found.append((b"x-read-fallback", self.fallback.encode()))
        return found


class ReadReplica:
    """The replica's engine, and the choice of database for each routed read."""

    def __init__(self, settings: Settings, read_url: str) -> None:
        if settings.is_sqlite or not read_url.startswith("postgresql"):
            raise ValueError("SW_READ_DATABASE_URL needs PostgreSQL for both the primary and the replica")
        self.engine: AsyncEngine = create_async_engine(
            read_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
            # A replica that does not answer must not hold a read for asyncpg's default minute.
            connect_args={"timeout": settings.read_connect_timeout_s},
            pool_pre_ping=False,
        )
        self.sessionmaker = create_sessionmaker(self.engine)
        self.max_lag_s = settings.read_max_lag_s
        self.fallback = settings.read_fallback
        self.retry_s = settings.read_retry_s
        self.last = ReplicaState("unreachable", None)
        self._skip_until = 0.0

    async def measure(self) -> ReplicaState:
        """The replica's replay lag now, or unreachable (then it is not asked again for ``SW_READ_RETRY_S``)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                lag = (await conn.execute(LAG_SQL)).scalar_one()
        except (DBAPIError, OSError, TimeoutError) as exc:
            log.warning("read replica unreachable: %s", exc)
            return self.lost()
        lag_s = None if lag is None else max(0.0, float(lag))
        self.last = ReplicaState("ok" if lag_s is not None and lag_s <= self.max_lag_s else "lagging", lag_s)
        return self.last

    def lost(self) -> ReplicaState:
        """The replica is unreachable: not asked again for ``SW_READ_RETRY_S``."""
        self._skip_until = time.monotonic() + self.retry_s
        self.last = ReplicaState("unreachable", None)
        return self.last

    async def choose(self, primary: async_sessionmaker[AsyncSession]) -> ReadSource:
        if time.monotonic() < self._skip_until:
            state = self.last
        else:
            state = await self.measure()
        if state.health == "ok" and state.lag_s is not None:
            return ReadSource("replica", self.sessionmaker, state.lag_s)
        if not self.fallback:
            lag = "unknown" if state.lag_s is None else f"{state.lag_s:.1f} s"
            raise ReplicaUnavailable(
                f"The read replica is {state.health} (lag {lag}, at most {self.max_lag_s} s allowed) and "
                "SW_READ_FALLBACK is off",
                retry_after_s=max(1, round(self.retry_s)),
            )
        return ReadSource("primary", primary, 0.0, fallback=state.health)

    def after_conflict(self, primary: async_sessionmaker[AsyncSession]) -> ReadSource:
        """The second attempt of a read the replica cancelled (app/read_replica_retry.py): the primary, which
        has every row the replica had; with ``SW_READ_FALLBACK`` off, a 503 to retry."""
        if not self.fallback:
            raise ReplicaUnavailable(
                "The read replica cancelled this read (a conflict with recovery: the rows it was reading were "
                "being replayed away) and SW_READ_FALLBACK is off",
                retry_after_s=1,
            )
        return ReadSource("primary", primary, 0.0, fallback="conflict")

    async def dispose(self) -> None:
        await self.engine.dispose()


def primary_source(primary: async_sessionmaker[AsyncSession]) -> ReadSource:
    return ReadSource("primary", primary, 0.0)
