"""The SQLite engine of embedded mode: one connection used in turn, each call on the event loop's thread, and a
lock held by another process waited for without stopping the loop (app/db.py, app/sqlite_inline.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine, create_sessionmaker, run_in_transaction


@contextlib.asynccontextmanager
async def _engine(path: Path, **overrides: object) -> AsyncIterator[AsyncEngine]:
    settings = Settings(  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{path}", admin_token=SecretStr("unused"), _env_file=None, **overrides
    )
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "engine.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER NOT NULL)")
        conn.commit()
    return path


async def _ticks_while(work: asyncio.Future[object] | asyncio.Task[object]) -> int:
    """How many times a 10 ms ticker ran on this loop until ``work`` ended."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


async def test_a_lock_held_by_another_process_is_waited_for_without_stopping_the_loop(database: Path) -> None:
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (sw matcher, a CLI command) holds the writer lock
    try:
        async with _engine(database, sqlite_busy_timeout_ms=10_000) as engine:
            sessionmaker = create_sessionmaker(engine)

            async def insert() -> object:
                async def work(session: object) -> None:
                    await session.execute(text("INSERT INTO t (n) VALUES (1)"))  # type: ignore[attr-defined]

                return await run_in_transaction(sessionmaker, work)

            task = asyncio.create_task(insert())
            asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
            started = time.monotonic()
            ticks = await _ticks_while(task)
            await task
            assert time.monotonic() - started >= 0.25  # it did wait for the lock
            assert ticks >= 10  # and the loop went on meanwhile (SQLite's busy handler would have blocked it)
    finally:
        other.close()
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1


async def test_the_wait_for_another_process_ends_at_the_busy_timeout(database: Path) -> None:
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        async with _engine(database, sqlite_busy_timeout_ms=200) as engine:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="locked"):
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO t (n) VALUES (1)"))
            assert 0.15 <= time.monotonic() - started < 5
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_concurrent_transactions_take_the_one_connection_in_turn(database: Path) -> None:
    """Forty writers at once: each waits for the connection (first come, first served), none for SQLite's lock."""
    async with _engine(database, sqlite_busy_timeout_ms=0) as engine:
        assert engine.pool.size() == 1  # type: ignore[attr-defined]
        sessionmaker = create_sessionmaker(engine)

        async def insert(n: int) -> None:
            async def work(session: object) -> None:
                await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})  # type: ignore[attr-defined]
                await asyncio.sleep(0)  # give the loop away inside the transaction

            await run_in_transaction(sessionmaker, work)

        await asyncio.gather(*(insert(n) for n in range(40)))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 40


async def test_statements_run_on_the_loops_thread(database: Path) -> None:
    """No thread hop per call: a transaction of many statements does not let other tasks run between them."""
    async with _engine(database) as engine:
        task = asyncio.ensure_future(asyncio.sleep(0))
        async with engine.begin() as conn:
            for n in range(50):
                await conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
            assert not task.done()  # the loop never ran it: every statement completed without yielding
        await task


async def test_the_thread_driver_is_still_there_when_asked_for(database: Path) -> None:
    async with _engine(database, sqlite_inline=False) as engine:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (n) VALUES (1)"))
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert type(raw.driver_connection).__module__.startswith("aiosqlite")
