"""Migrations are the only source of the schema: upgrade → downgrade → upgrade works, and the models match."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
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


def test_the_ready_migration_marks_each_queue_s_earliest_pending_delivery(scratch_url: str) -> None:
    """0020 on deliveries already queued: the earliest pending one of each (subscription, ordering_key) queue is
    ready, the rest of the queue is not — a queue left with no ready delivery would never be sent again."""
    settings = Settings(database_url=scratch_url, _env_file=None)  # type: ignore[call-arg]
    upgrade(settings, "0019_webhook_pending_head")
    subscription, paused = uuid.uuid4(), uuid.uuid4()
    # (subscription, ordering_key, event_id, status): r:1's first event delivered, its second and third pending;
    # r:2 all pending; a paused subscription's queue has no head until it is resumed.
    queued = [(subscription, "r:1", 1, "delivered"), (subscription, "r:1", 2, "pending"),
              (subscription, "r:1", 3, "pending"), (subscription, "r:2", 4, "pending"),
              (subscription, "r:2", 5, "pending"), (subscription, "e:6", 6, "dead"),
              (paused, "r:1", 7, "pending")]  # fmt: skip

    # The tables as 0019 left them (lightweight: no column of later revisions), for typed binds on either database.
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def stamped() -> tuple[sa.ColumnClause[Any], ...]:
        return sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True))

    enterprise = sa.table(
        "enterprise", sa.column("code"), sa.column("name"), sa.column("roles", sa.JSON), sa.column("status"), *stamped()
    )
    subscriptions = sa.table(
        "subscription", sa.column("id", sa.Uuid), sa.column("enterprise_code"), sa.column("url"),
        sa.column("events", sa.JSON), sa.column("format"), sa.column("status"), sa.column("secret"),
        sa.column("consecutive_failures"), *stamped(),
    )  # fmt: skip
    deliveries = sa.table(
        "webhook_delivery", sa.column("id", sa.Uuid), sa.column("subscription_id", sa.Uuid), sa.column("event_tx"),
        sa.column("event_id"), sa.column("event_type"), sa.column("ordering_key"), sa.column("status"),
        sa.column("attempts"), sa.column("next_attempt_at", sa.DateTime(timezone=True)), *stamped(),
    )  # fmt: skip

    async def seed_and_read(seed: bool) -> dict[int, bool]:
        engine = create_async_engine(scratch_url)
        try:
            async with engine.begin() as conn:
                if seed:
                    stamps: dict[str, Any] = {"created_at": now, "updated_at": now}
                    await conn.execute(
                        enterprise.insert().values(code="E1", name="e", roles=[], status="active", **stamps)
                    )
                    await conn.execute(
                        subscriptions.insert(),
                        [{"id": sid, "enterprise_code": "E1", "url": "http://x", "events": [], "format": "json",
                          "status": status, "secret": "s", "consecutive_failures": 0, **stamps}
                         for sid, status in ((subscription, "active"), (paused, "paused"))],
                    )  # fmt: skip
                    await conn.execute(
                        deliveries.insert(),
                        [{"id": uuid.uuid4(), "subscription_id": sid, "event_tx": 1, "event_id": e,
                          "event_type": "status_changed", "ordering_key": k, "status": st, "attempts": 0,
                          "next_attempt_at": now, **stamps} for sid, k, e, st in queued],
                    )  # fmt: skip
                    return {}
                rows = await conn.execute(text("SELECT event_id, ready FROM webhook_delivery WHERE status = 'pending'"))
                return {int(event_id): bool(ready) for event_id, ready in rows}
        finally:
            await engine.dispose()

    asyncio.run(seed_and_read(True))
    upgrade(settings)
    assert asyncio.run(seed_and_read(False)) == {2: True, 3: False, 4: True, 5: False, 7: False}
