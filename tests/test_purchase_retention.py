"""Retention of the purchases themselves (docs/storage.md, "Retention of purchases"), on both backends: a final
purchase older than the cutoff is exported, verified, deleted and audited, its key kept; one still unresolved,
changed recently or declared this year is kept; a late resend of a pruned purchase's document is refused with
PURCHASE_ARCHIVED and creates nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.models import (
    AgencyReceipt,
    AuditEntry,
    Declaration,
    Dispatch,
    Document,
    MatchRecord,
    PrunedPurchase,
    RecordEvent,
    Submission,
)
from app.partitioning import Month
from app.services.partitions import read_export
from app.services.purchase_retention import ORDER, prune_purchases
from tests.conftest import ADMIN
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.test_dispatch import drain
from tests.test_filing_and_access import assert_problem
from tests.test_partitions import sw, world  # noqa: F401 - the fixture

OLD = Month(2020, 3)
CUTOFF = OLD.plus(1).start()


async def cleared(app: FastAPI, client: httpx.AsyncClient, parties: Parties) -> tuple[uuid.UUID, tuple[dict, ...]]:  # type: ignore[type-arg]
    triple = purchase(own_buyer=True)
    receipt = (await post_triple(client, parties, triple))[-1].json()
    await drain(app)
    record = (await client.get(f"/api/v1/records/{receipt['recordId']}", headers=ADMIN)).json()
    assert record["status"] == "CLEARED", record
    return uuid.UUID(receipt["recordId"]), triple


async def age(app: FastAPI, record_id: uuid.UUID) -> None:
    """As if the purchase had last changed in OLD, and been declared in that year."""
    async with app.state.engine.begin() as conn:
        await conn.execute(
            update(MatchRecord).where(MatchRecord.id == record_id).values(updated_at=OLD.start() + timedelta(days=3))
        )
        await conn.execute(update(Declaration).where(Declaration.record_id == record_id).values(decl_year=2020))


async def count(app: FastAPI, model: type, **where: object) -> int:
    async with app.state.sessionmaker() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(await session.scalar(query) or 0)


async def test_a_final_old_purchase_is_exported_deleted_audited_and_a_resend_is_refused(
    world: tuple[FastAPI, httpx.AsyncClient],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    app, client = world
    parties = await file_parties(client)
    record_id, (order, payment, waybill) = await cleared(app, client, parties)
    await age(app, record_id)
    dispatches = await count(app, Dispatch, record_id=record_id)
    receipts = await count(app, AgencyReceipt, record_id=record_id)
    assert dispatches > 0
    assert receipts > 0

    report = await prune_purchases(app.state.engine, CUTOFF, tmp_path)

    assert report.purchases == 1
    (batch,) = report.batches
    assert batch.rows["match_record"] == 1
    assert batch.rows["document"] == 3
    assert batch.rows["submission"] == 3
    assert batch.rows["declaration"] == 1
    assert (batch.rows["dispatch"], batch.rows["agency_receipt"]) == (dispatches, receipts)
    assert batch.rows["record_event"] > 0
    for model in (MatchRecord, Document, Submission, RecordEvent, Dispatch, AgencyReceipt, Declaration):
        assert await count(app, model) == 0, model
    # The export reads back, every table's file its manifest's count and digest.
    manifest = json.loads(batch.manifest.read_text())
    assert manifest["purchases"] == [[order["ebpCode"], order["orderNo"]]]
    for table in ORDER:
        rows = list(read_export(batch.manifest.parent / manifest["tables"][table]["file"]))
        assert len(rows) == manifest["tables"][table]["rows"] == batch.rows[table], table
    documents = list(read_export(batch.manifest.parent / "document.jsonl.gz"))
    assert {row["business_no"] for row in documents} == {
        order["orderNo"],
        payment["payTransactionId"],
        waybill["logisticsNo"],
    }
    async with app.state.sessionmaker() as session:
        (audited,) = await session.scalars(select(AuditEntry).where(AuditEntry.action == "purchases.pruned"))
        kept = await session.get(PrunedPurchase, (order["ebpCode"], order["orderNo"]))
    assert (audited.after or {})["purchases"] == 1
    assert (audited.after or {})["manifest"] == str(batch.manifest)
    assert kept is not None
    assert (kept.record_id, kept.status) == (record_id, "CLEARED")
    assert (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).status_code == 404

    # A late resend of any of its documents, the same content or not, starts nothing: refused, nothing stored.
    again = await client.post("/api/v1/orders", json=order, headers=parties.platform)
    assert_problem(again, 409, "PURCHASE_ARCHIVED")
    assert_problem(
        await client.post("/api/v1/payments", json=payment, headers=parties.payment), 409, "PURCHASE_ARCHIVED"
    )
    waybill_again = await client.post("/api/v1/waybills", json=waybill, headers=parties.logistics)
    assert_problem(waybill_again, 409, "PURCHASE_ARCHIVED")
    assert await count(app, MatchRecord) == 0
    assert await count(app, Document) == 0


async def test_unresolved_recent_and_this_years_purchases_are_kept(
    world: tuple[FastAPI, httpx.AsyncClient],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    app, client = world
    parties = await file_parties(client)
    gone, _ = await cleared(app, client, parties)
    dead, _ = await cleared(app, client, parties)
    recent, _ = await cleared(app, client, parties)
    this_year, _ = await cleared(app, client, parties)
    for record_id in (gone, dead):
        await age(app, record_id)
    async with app.state.engine.begin() as conn:
        # A dispatch given up on waits for an operator's redispatch; a purchase declared this year counts
        # towards its buyer's annual quota.
        await conn.execute(update(Dispatch).where(Dispatch.record_id == dead).values(status="dead"))
        await conn.execute(
            update(MatchRecord).where(MatchRecord.id == this_year).values(updated_at=OLD.start() + timedelta(days=3))
        )
    declared = uuid.UUID((await post_triple(client, parties, purchase(own_buyer=True)))[-1].json()["recordId"])
    await age(app, declared)  # not final: declared, the agencies' answers not in

    dry = await prune_purchases(app.state.engine, CUTOFF, tmp_path, dry_run=True)
    assert (dry.eligible, dry.batches) == (1, [])
    assert await count(app, MatchRecord) == 5
    report = await prune_purchases(app.state.engine, CUTOFF, tmp_path)

    assert report.purchases == 1
    async with app.state.sessionmaker() as session:
        left = set(await session.scalars(select(MatchRecord.id)))
    assert left == {dead, recent, this_year, declared}


async def test_batches_are_bounded(
    world: tuple[FastAPI, httpx.AsyncClient],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    app, client = world
    parties = await file_parties(client)
    for _ in range(3):
        record_id, _ = await cleared(app, client, parties)
        await age(app, record_id)

    report = await prune_purchases(app.state.engine, CUTOFF, tmp_path, batch_size=2)

    assert [batch.purchases for batch in report.batches] == [2, 1]
    assert len({batch.manifest.parent for batch in report.batches}) == 2
    assert await count(app, PrunedPurchase) == 3


def test_the_command_keeps_everything_unless_told(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sw.db'}"
    assert sw("migrate", database_url=url).returncode == 0
    kept = sw("prune-purchases", database_url=url)
    assert (kept.returncode, "every purchase is kept" in kept.stdout) == (0, True)
    dry = sw("prune-purchases", "--before", "2020-01", "--dry-run", database_url=url)
    assert "would prune 0 purchases last changed before 2020-01" in dry.stdout, dry.stdout + dry.stderr
    future = sw("prune-purchases", "--before", "2999-01", database_url=url)
    assert future.returncode == 2
    done = sw("prune-purchases", database_url=url, SW_PURCHASE_RETENTION_MONTHS="36")
    assert "0 purchases pruned" in done.stdout, done.stdout + done.stderr


async def test_nothing_to_prune_is_quick(app: FastAPI, tmp_path: Path) -> None:
    report = await asyncio.wait_for(prune_purchases(app.state.engine, CUTOFF, tmp_path), 30)
    assert (report.purchases, report.batches) == (0, [])
