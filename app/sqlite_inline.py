"""An aiosqlite-shaped connection that runs each sqlite3 call on the event loop's own thread.

aiosqlite hands every call (cursor, execute, fetch, close) to a thread of its own and wakes the event loop
with the answer: four thread hops per statement, each a trip through the loop's ready queue behind every
other task. A transaction holds SQLite's single writer lock across all of them, so in embedded mode (one
process; accept, matcher, dispatcher and webhooks on one file) the lock was held mostly while waiting to be
scheduled, and the accept rate was a fraction of the bare insert's (docs/performance.md, "Embedded SQLite").
A statement on a local file takes microseconds to a few milliseconds, less than the hops around it; run
inline, a transaction runs to its end without giving the loop away (unless its own code awaits something
else), which keeps the writer lock short.

The one call that may wait is taking the lock (``BEGIN IMMEDIATE``) while another *process* holds it (a
standalone ``sw matcher``, a CLI command on the same file): SQLite's own busy handler would sleep on the
loop's thread, so these connections have ``busy_timeout = 0`` and an ``SQLITE_BUSY`` outside a transaction
is retried here with an asyncio sleep, for up to the configured busy timeout. Within this process the
engine's one-connection pool already queues the transactions (app/db.py).

Used through ``create_async_engine(..., async_creator=...)``: SQLAlchemy's aiosqlite dialect (its SQL,
exceptions and types) stays as it is; only the object under it changes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

# Waits between tries for a lock held by another process: short first (a commit takes about a millisecond).
_BUSY_BACKOFF_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


class InlineCursor:
    def __init__(self, owner: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._owner = owner
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        await self._owner.call(partial(self._cursor.execute, sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> InlineCursor:
        await self._owner.call(partial(self._cursor.executemany, sql, parameters))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses directly to set ``isolation_level``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    """The part of ``aiosqlite.Connection`` that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, conn: sqlite3.Connection, busy_timeout_s: float) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # the dialect checks it before commit / rollback
        self._tx = _RunNow(conn)
        self._busy_timeout_s = busy_timeout_s

    async def call(self, function: Callable[[], Any]) -> Any:
        """``function()`` now; if another process holds the lock and we are not inside a transaction (taking
        the lock, or a statement of its own), again after an asyncio sleep, until the busy timeout."""
        deadline: float | None = None
        tries = 0
        while True:
            try:
                return function()
            except sqlite3.OperationalError as exc:
                if (exc.sqlite_errorcode & 0xFF) != sqlite3.SQLITE_BUSY or self._conn.in_transaction:
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._busy_timeout_s
                if now >= deadline:
                    raise
                await asyncio.sleep(min(_BUSY_BACKOFF_S[min(tries, len(_BUSY_BACKOFF_S) - 1)], deadline - now))
                tries += 1

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Terminate (SQLAlchemy, on an invalidated connection): there is no thread to stop, only the file."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(path: Path, busy_timeout_s: float) -> Callable[[], Any]:
    """``async_creator`` for ``create_async_engine``: a new inline connection to the file at ``path``."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: a connection dropped by the garbage collector may be closed from elsewhere.
        conn = sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)
        return InlineConnection(conn, busy_timeout_s)

    return connect
