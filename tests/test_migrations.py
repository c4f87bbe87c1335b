"""Migrations are the only source of the schema: upgrade → downgrade → upgrade works, and the models match."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.migrate import downgrade, upgrade
from app.models import Base
from app.partitioning import include_in_comparison


@pytest.fixture
def scratch_url(database_url: str, tmp_path: Path) -> object:
    """A database of its own, so the round trip cannot disturb the shared test schema."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"sw_mig_{uuid.uuid4().hex[:12]}"
    server = make_url(database_url)

    async def admin(sql: str) -> None:
        engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _diff_and_tables(url: str) -> tuple[list[object], set[str]]:
    def inspect_sync(conn: Connection) -> tuple[list[object], set[str]]:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_in_comparison})
        return list(compare_metadata(context, Base.metadata)), set(inspect(conn).get_table_names())

    async def run() -> tuple[list[object], set[str]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(inspect_sync)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_downgrade_upgrade_and_no_drift(scratch_url: str) -> None:
    settings = Settings(database_url=scratch_url, _env_file=None)  # type: ignore[call-arg]
    upgrade(settings)
    diff, tables = _diff_and_tables(scratch_url)
    assert diff == [], f"models and migrations differ: {diff}"
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    downgrade(settings, "base")
    _, tables = _diff_and_tables(scratch_url)
    assert tables <= {"alembic_version"}
    upgrade(settings)
    diff, _ = _diff_and_tables(scratch_url)
    assert diff == []
