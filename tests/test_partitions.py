"""Retention of the logs by month (docs/storage.md), on both backends: `sw prune` refuses a month holding anything
not final and touches nothing; a final month is exported, verified, dropped (PostgreSQL) or deleted (SQLite) and
audited; the export reads back; a document sent again after its month was pruned is still one document."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from app.config import Settings
from app.models import AuditEntry, Base, Document, MatchRecord, Submission
from app.partitioning import PARTITIONED, Month, partition_name
from app.services import partitions
from app.services.partitions import PruneRefused, ensure, existing_partitions, prune, read_export, retention_cutoff
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase
from tests.live import clean_env
from tests.test_dispatch import drain

OLD = Month(2020, 3)


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(
        settings, supervision_rate_regular=0.0, mock_inspection_delay_ms=10, dispatch_backoff_base_s=0.001
    ) as pair:
        yield pair


async def move_everything_to(app: FastAPI, month: Month) -> None:
    """Date every logged row into ``month`` (as if written then): on PostgreSQL the rows move to its partition."""
    await ensure(app.state.engine, 0, now=month.start())
    async with app.state.engine.begin() as conn:
        for table, column in PARTITIONED.items():
            model_table = Base.metadata.tables[table]
            await conn.execute(update(model_table).values({column: month.start() + timedelta(days=2)}))


async def month_counts(app: FastAPI, month: Month) -> dict[str, int]:
    async with app.state.engine.connect() as conn:
        counts = {}
        for table, column in PARTITIONED.items():
            model_table = Base.metadata.tables[table]
            in_month = (model_table.c[column] >= month.start()) & (model_table.c[column] < month.end())
            counts[table] = int(await conn.scalar(select(func.count()).select_from(model_table).where(in_month)) or 0)
        return counts


async def audit_actions(app: FastAPI, action: str) -> list[AuditEntry]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_prune_refuses_a_month_holding_a_purchase_not_yet_final_and_touches_nothing(
    world: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    app, client = world
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    assert receipt["recordStatus"] == "DECLARED"  # declared, not yet answered by the agencies: not final
    await move_everything_to(app, OLD)
    before = await month_counts(app, OLD)
    assert (before["submission"], before["raw_message"]) == (3, 3)
    assert before["record_event"] > 0

    with pytest.raises(PruneRefused) as refused:
        await prune(app.state.engine, OLD.plus(1), tmp_path)
    assert any(r.startswith("submission_p202003") for r in refused.value.refusals), refused.value.refusals
    assert any(r.startswith("record_event_p202003") for r in refused.value.refusals), refused.value.refusals
    assert await month_counts(app, OLD) == before
    assert os.listdir(tmp_path) == []
    assert await audit_actions(app, "partition.pruned") == []
    # The command says why, and fails.
    refused_cli = await asyncio.to_thread(
        sw, "prune", "--before", "2020-04", "--export-dir", str(tmp_path), database_url=app.state.settings.database_url
    )
    assert refused_cli.returncode == 1, refused_cli.stderr
    assert "submission_p202003: 3 rows not final" in refused_cli.stderr
    assert await month_counts(app, OLD) == before


async def test_a_final_month_is_exported_verified_dropped_and_audited(
    world: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path
) -> None:
    app, client = world
    parties = await file_parties(client)
    triple = purchase()
    responses = await post_triple(client, parties, triple)
    receipt = responses[-1].json()
    await drain(app)
    record = (await client.get(f"/api/v1/records/{receipt['recordId']}", headers=ADMIN)).json()
    assert record["status"] == "CLEARED", record
    async with app.state.sessionmaker() as session:
        order_doc = await session.scalar(select(Document).where(Document.doc_type == "order"))
    assert order_doc is not None
    raw_id = order_doc.raw_message_id
    raw = (await client.get(f"/api/v1/audit/messages/{raw_id}", headers=ADMIN)).json()
    await move_everything_to(app, OLD)
    expected = await month_counts(app, OLD)

    report = await prune(app.state.engine, OLD.plus(1), tmp_path)

    pruned = {p.table: p.rows for p in report.pruned if p.month == OLD}
    # PostgreSQL drops the month's empty partitions too (0 rows); SQLite has only the months with rows.
    assert {t: n for t, n in pruned.items() if n} == {t: n for t, n in expected.items() if n}
    assert (pruned["submission"], pruned["raw_message"]) == (3, 3)
    assert await month_counts(app, OLD) == dict.fromkeys(PARTITIONED, 0)
    # The export reads back: the raw body byte for byte.
    rows = {row["id"]: row for row in read_export(tmp_path / "raw_message_202003.jsonl.gz")}
    assert base64.b64decode(rows[str(raw_id)]["body"]["$base64"]).decode() == raw["body"]
    assert len(list(read_export(tmp_path / "submission_202003.jsonl.gz"))) == 3
    assert (tmp_path / "submission_202003.manifest.json").exists()
    # The purchase itself is kept (the key tables are not pruned); its month of logs is gone.
    kept = (await client.get(f"/api/v1/records/{receipt['recordId']}", headers=ADMIN)).json()
    assert (kept["status"], kept["documents"]) == ("CLEARED", record["documents"])
    assert (await client.get(f"/api/v1/audit/messages/{raw_id}", headers=ADMIN)).status_code == 404
    audited = {entry.target_id: entry.after for entry in await audit_actions(app, "partition.pruned")}
    assert (audited["submission_p202003"] or {}).get("rows") == 3

    # Sent again after its month was pruned, the order is still one order: the key table answers the replay.
    again = await client.post("/api/v1/orders", json=triple[0], headers=parties.platform)
    assert again.status_code == 200, again.text
    assert again.json()["replayed"] is True
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Document)) == 3
        assert await session.scalar(select(func.count()).select_from(MatchRecord)) == 1


async def test_the_same_document_in_a_later_month_is_a_replay_without_a_new_row(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """The accept path finds a key's latest submission whatever month (partition) it is in."""
    app, client = world
    parties = await file_parties(client)
    order = purchase()[0]
    first = await client.post("/api/v1/orders", json=order, headers=parties.platform)
    assert first.status_code == 201, first.text
    await move_everything_to(app, OLD)
    again = await client.post("/api/v1/orders", json=order, headers=parties.platform)
    assert again.status_code == 200, again.text
    assert (again.json()["replayed"], again.json()["recordId"]) == (True, first.json()["recordId"])
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Submission)) == 1
        assert await session.scalar(select(func.count()).select_from(Document)) == 1


async def test_nothing_older_than_the_cutoff_means_nothing_pruned(app: FastAPI, tmp_path: Path) -> None:
    report = await prune(app.state.engine, Month(2001, 1), tmp_path)
    assert (report.pruned, report.checked) == ([], [])
    assert retention_cutoff(0) is None
    assert retention_cutoff(24, Month(2026, 12).start()) == Month(2024, 12)


def sw(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app", *args],
        env=clean_env(SW_DATABASE_URL=database_url, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prune_and_ensure_commands_say_what_they_do(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sw.db'}"
    assert sw("migrate", database_url=url).returncode == 0
    not_a_month = sw("prune", "--before", "2026-13", database_url=url)
    assert (not_a_month.returncode, "not a month" in not_a_month.stderr) == (2, True)
    future = sw("prune", "--before", "2999-01", database_url=url)
    assert (future.returncode, "still written to" in future.stderr) == (2, True)
    assert "nothing before 2020-01" in sw("prune", "--before", "2020-01", database_url=url).stdout
    assert "everything is kept" in sw("prune", database_url=url, SW_RETENTION_MONTHS="0").stdout
    assert "SQLite: tables are not partitioned" in sw("partitions", "ensure", database_url=url).stdout


def test_months_count_across_a_year() -> None:
    assert Month(2026, 12).plus(1) == Month(2027, 1)
    assert Month(2027, 1).plus(-1) == Month(2026, 12)
    assert Month.parse("2026-02").end() == Month(2026, 3).start()
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse("2026-13")


async def test_sqlite_has_no_partitions_to_create(app: FastAPI, is_postgres: bool) -> None:
    created = await ensure(app.state.engine, 2)
    if not is_postgres:
        assert created == []
        return
    async with app.state.engine.connect() as conn:
        kinds = dict(
            (await conn.execute(text("SELECT relname, relkind::text FROM pg_class WHERE relkind = 'p'"))).all()
        )
    assert set(PARTITIONED) <= set(kinds)


@pytest.mark.postgres_only
async def test_a_busy_table_makes_the_detach_wait_its_turn_without_holding_intake(
    app: FastAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader holds the submission table: each detach attempt gives up its lock request after the timeout (a
    request left queued would hold every later intake on the table behind it), the months already pruned stay
    pruned, the blocked one is untouched and not audited; once the reader is gone the next attempt gets it."""
    monkeypatch.setattr(partitions, "DETACH_LOCK_TIMEOUT_MS", 100)
    monkeypatch.setattr(partitions, "DETACH_ATTEMPTS", 2)
    monkeypatch.setattr(partitions, "DETACH_PAUSE_S", 0.01)
    engine = app.state.engine
    await ensure(engine, 0, now=OLD.start())
    blocked_name = partition_name("submission", OLD)
    async with engine.connect() as reader:
        await reader.execute(text("SELECT count(*) FROM submission"))  # ACCESS SHARE until the reader ends
        with pytest.raises(partitions.DetachBlocked) as blocked:
            # Without the lock timeout the detach would wait for the reader for ever.
            await asyncio.wait_for(prune(engine, OLD.plus(1), tmp_path), timeout=30)
        await reader.rollback()
    assert blocked.value.report is not None
    done_before = {(p.table, p.month) for p in blocked.value.report.pruned}
    assert ("raw_message", OLD) in done_before
    assert ("submission", OLD) not in done_before
    async with engine.connect() as conn:
        assert blocked_name in await existing_partitions(conn, "submission")
        assert partition_name("raw_message", OLD) not in await existing_partitions(conn, "raw_message")
    audited = {entry.target_id for entry in await audit_actions(app, "partition.pruned")}
    assert partition_name("raw_message", OLD) in audited
    assert blocked_name not in audited

    # The reader ends during the first attempt: the second one gets the lock.
    async with engine.connect() as reader:
        await reader.execute(text("SELECT count(*) FROM submission"))

        async def end_reader() -> None:
            await asyncio.sleep(0.05)
            await reader.rollback()

        monkeypatch.setattr(partitions, "DETACH_PAUSE_S", 0.2)
        ended = asyncio.create_task(end_reader())
        report = await prune(engine, OLD.plus(1), tmp_path)
        await ended
    assert ("submission", OLD) in {(p.table, p.month) for p in report.pruned}
    async with engine.connect() as conn:
        assert blocked_name not in await existing_partitions(conn, "submission")
