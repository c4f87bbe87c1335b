"""A barrier that makes two database transactions really overlap at a chosen point, on either backend.

A race test is only worth something if the race can happen in it. ``OverlapBarrier.arrive`` holds a
transaction at the point under test (e.g. right after it has read the buyer's quota) until the other
transaction has arrived there too — both have read, so a missing lock shows as a lost update — or until the
other is provably kept from getting there by a lock (then the lock did its job and holding on would deadlock),
or has finished. Nothing here depends on timing: whether the other transaction is blocked is read from the
database (PostgreSQL: ``pg_stat_activity`` shows a backend waiting on a lock) or, on SQLite, from the engine's
cursor events (a connection that has sent ``BEGIN IMMEDIATE`` and not come back from it waits for the write
lock, which the arrived transaction holds) and from the pool (a SQLite file's engine has one connection,
app/db.py: a party that has not begun while the arrived one holds it waits for it). The engine's ``begin``
event would be the natural place, but a listener added to it after the app's own was not called for every
connection; the cursor events are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

T = TypeVar("T")
POLL_S = 0.005  # how often the held transaction looks again; not a bound on anything

# Backends waiting for a lock in this database, other than the one asking.
_PG_LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


class OverlapBarrier:
    def __init__(self, engine: AsyncEngine, parties: int = 2) -> None:
        self.engine = engine
        self.parties = parties
        self.armed = False
        self.arrived = 0
        self.finished = 0
        self.releases: list[str] = []  # why each arrival went on: "all arrived", "others blocked", "others finished"
        self._beginning = 0  # SQLite: connections inside BEGIN IMMEDIATE, not yet holding the write lock
        self._not_begun: set[asyncio.Task[Any] | None] = set()  # SQLite: parties that have not begun a transaction
        self._observer: AsyncEngine | None = None

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def __aenter__(self) -> OverlapBarrier:
        if self.postgres:
            self._observer = create_async_engine(self.engine.url, poolclass=NullPool)
        else:
            sync = self.engine.sync_engine
            event.listen(sync, "before_cursor_execute", self._entering_begin)
            event.listen(sync, "after_cursor_execute", self._begun)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._observer is not None:
            await self._observer.dispose()
        else:
            sync = self.engine.sync_engine
            event.remove(sync, "before_cursor_execute", self._entering_begin)
            event.remove(sync, "after_cursor_execute", self._begun)

    def _entering_begin(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            self._beginning += 1

    def _begun(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            self._beginning -= 1
            self._not_begun.discard(asyncio.current_task())

    async def _others_blocked(self) -> bool:
        if self._observer is None:
            pool: Any = self.engine.sync_engine.pool
            waiting_for_the_connection = bool(self._not_begun) and pool.checkedout() >= pool.size()
            return self._beginning > 0 or waiting_for_the_connection
        async with self._observer.connect() as conn:
            return bool((await conn.execute(_PG_LOCK_WAITERS)).scalar_one())

    async def arrive(self) -> None:
        """Called by each transaction at the point under test (no-op unless armed)."""
        if not self.armed:
            return
        self.arrived += 1
        while True:
            if self.arrived >= self.parties:
                self.releases.append("all arrived")
                return
            if self.finished >= self.parties - self.arrived:
                self.releases.append("others finished")
                return
            if await self._others_blocked():
                self.releases.append("others blocked")
                return
            await asyncio.sleep(POLL_S)

    async def party(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run one party's transaction; when it ends (committed or failed) the others need not wait for it."""
        task = asyncio.current_task()
        self._not_begun.add(task)
        try:
            return await work()
        finally:
            self._not_begun.discard(task)
            self.finished += 1
