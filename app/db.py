"""Engine, sessions and the unit of work.

The unit of work (``run_in_transaction``) is the one place that commits: request handlers and services
receive a session inside it and never commit themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import DateTime, Numeric, String, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator, TypeEngine

from app.config import Settings
from app.sqlite_inline import inline_creator

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL SQLSTATEs after which the whole transaction can simply be run again.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive text otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(p, s) on PostgreSQL; on SQLite, whose NUMERIC is a binary float, the exact decimal as text.

    Values are compared and summed in Python where SQLite is concerned, never in SQL.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision, self.scale = precision, scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return format(Decimal(value), "f") if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        # No pre-ping: on asyncpg it costs three round trips (BEGIN, a query, ROLLBACK) per checkout, which
        # on a small machine is a tenth of a single-document request. A connection that died with the server
        # fails on first use instead; SQLAlchemy then drops the whole pool, idempotent units of work run
        # again on a fresh connection (``run_in_transaction(..., idempotent=True)``), and other requests
        # answer 503 once. docs/reliability.md, "Database restart", has the figures.
        pool_pre_ping=False,
    )


def _create_sqlite_engine(settings: Settings) -> AsyncEngine:
    busy_ms = settings.sqlite_busy_timeout_ms
    path = settings.sqlite_file
    if path is None:  # an in-memory database (tests): aiosqlite's own connection and pool
        engine = create_async_engine(settings.database_url)
    else:
        # One connection, used in turn: every transaction here takes SQLite's single writer lock (BEGIN
        # IMMEDIATE below), so more connections only made them wait in SQLite's busy handler — sleeps of up to
        # 100 ms, in no order — instead of in the pool's queue, first come first served. The wait is bounded as
        # the busy timeout bounded it. Each call runs on the event loop's thread (app/sqlite_inline.py) unless
        # SW_SQLITE_INLINE=false (aiosqlite's thread).
        inline = {"async_creator": inline_creator(path, busy_ms / 1000)} if settings.sqlite_inline else {}
        engine = create_async_engine(
            settings.database_url, pool_size=1, max_overflow=0, pool_timeout=max(busy_ms / 1000, 1.0), **inline
        )
        if settings.sqlite_inline:
            busy_ms = 0  # the inline connection waits for another process's lock itself, not on the loop's thread

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that BEGIN IMMEDIATE below is
        # the only BEGIN: writers then serialise on the database lock at the start of the unit of
        # work, which is what makes matching race-free on SQLite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def is_outage(exc: BaseException) -> bool:
    """Our database is unreachable or the connection broke: nothing is wrong with the submissions."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return False


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        # A concurrent writer committed the same natural key between our read and our insert;
        # running the unit of work again sees that row and answers replay / conflict instead.
        return True
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return sqlstate in _RETRYABLE_SQLSTATES
    return False


async def run_in_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    retries: int = 5,
    idempotent: bool = False,
) -> T:
    """Run ``work`` in one transaction and commit it; run it again after a retryable conflict.

    ``idempotent``: running ``work`` again after it may have committed is harmless (intake: the second run
    finds the stored document and replays it), so a connection lost mid-transaction — a database restart —
    is retried once on a fresh connection instead of failing the request.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            async with sessionmaker() as session, session.begin():
                return await work(session)
        except DBAPIError as exc:
            lost = idempotent and exc.connection_invalidated and attempt == 1
            if attempt >= retries or not (lost or _is_retryable(exc)):
                raise
            log.info("transaction retry %d after %s", attempt, type(exc.orig).__name__)
            await asyncio.sleep(0.005 * attempt)


async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncGenerator[AsyncSession, None]:
    """Request dependency: one transaction per request, committed on success, rolled back on error."""
    async with sessionmaker() as session, session.begin():
        yield session


ORDER_LOCKS, BUYER_LOCKS = 0, 1  # advisory-lock key spaces


async def advisory_xact_lock(session: AsyncSession, key: str, space: int) -> None:
    """Serialise transactions on ``key`` (PostgreSQL, until commit); SQLite's BEGIN IMMEDIATE already
    serialises every writer. ``space`` keeps unrelated kinds of keys apart."""
    await advisory_xact_locks(session, [key], space)


async def advisory_xact_locks(session: AsyncSession, keys: Iterable[str], space: int) -> None:
    """``advisory_xact_lock`` on every key, in one round trip. Every caller takes its keys in sorted order
    (unnest keeps the array's order), so that two transactions wanting overlapping sets cannot deadlock."""
    ordered = sorted(set(keys))
    if ordered and session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(k, :s)) FROM unnest(CAST(:keys AS text[])) AS k"),
            {"keys": ordered, "s": space},
        )


async def commit_without_flush_wait(session: AsyncSession) -> None:
    """Let this transaction's commit return before its WAL is on disk (PostgreSQL's ``synchronous_commit`` off
    for this transaction alone; SQLite unchanged). Only for work that is redone when lost: a server crash can
    lose the last such commits (a fraction of a second's worth, never part of one), while a waiting commit costs
    a disk flush each — most of a webhook delivery's turn through the database."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
