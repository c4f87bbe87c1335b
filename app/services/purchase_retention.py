"""Retention of the purchases themselves (docs/storage.md, "Retention of purchases"): the rows of a purchase
that is final and older than the retention are exported, verified, then deleted in bounded batches, each batch
audited, and the purchase's key is kept (``pruned_purchase``) so that a late resend is refused, never declared
again.

A purchase is kept while anything about it may still change or still has to be sent: a record not in a final
status, a dispatch not delivered (a dead one waits for an operator's redispatch), a cancel or return request not
delivered or not answered, an open risk warning, a submission not done, an event the webhook fan-out has not
read, or a webhook delivery still pending. Its declaration must be of a past year (this year's count towards
the buyer's annual quota) and the record unchanged since before the cutoff.

Raw message bodies are not deleted here: one body can carry documents of several purchases (batches), and the
log of bodies is pruned by month with ``sw prune`` (app/services/partitions.py), which finds nothing left to
guard once the purchase is gone.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, String, Table, Uuid, bindparam, delete, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import ORDER_LOCKS, UTCDateTime, advisory_xact_locks, utcnow
from app.lifecycle.status import RecordStatus
from app.models import Base, PrunedPurchase
from app.services.audit import Actor, record_act
from app.services.fanout import FANOUT_CURSOR
from app.services.partitions import plain_value, read_export

PRUNE_ACTOR = Actor("admin", "cli:sw prune-purchases")
FINAL = (
    RecordStatus.CLEARED,
    RecordStatus.REJECTED,
    RecordStatus.CANCELLED,
    RecordStatus.REVOKED,
    RecordStatus.RETURNED,
)
CHINA = ZoneInfo("Asia/Shanghai")  # the declaration year (decl_year) is China's

# The purchases that may go, oldest change first, after a keyset position: every clause is one that keeps a
# purchase (module docstring). Portable SQL (SQLite and PostgreSQL).
ELIGIBLE = """
SELECT r.id, r.ebp_code, r.order_no, r.status, r.updated_at FROM match_record r
WHERE r.status IN :final AND r.updated_at < :cutoff
  AND (r.updated_at > :after_at OR (r.updated_at = :after_at AND r.id > :after_id))
  AND NOT EXISTS (SELECT 1 FROM dispatch d WHERE d.record_id = r.id AND d.status <> 'delivered')
  AND NOT EXISTS (SELECT 1 FROM inventory_request q WHERE q.record_id = r.id
                  AND (q.delivery <> 'delivered' OR q.status = 'declared'))
  AND NOT EXISTS (SELECT 1 FROM risk_warning w WHERE w.record_id = r.id AND w.status = 'open')
  AND NOT EXISTS (SELECT 1 FROM declaration x WHERE x.record_id = r.id AND x.decl_year >= :year)
  AND NOT EXISTS (SELECT 1 FROM document d JOIN submission s ON s.document_id = d.id
                  WHERE d.record_id = r.id AND s.state <> 'done')
ORDER BY r.updated_at, r.id
LIMIT :limit
"""
# The same, for the purchases of one batch, checked again once their order numbers are locked.
RECHECK = ELIGIBLE.replace("ORDER BY", "AND r.id IN :ids\nORDER BY")

# Deleted children first (foreign keys); each table's rows of the batch, from the ids gathered so far.
ORDER = (
    "webhook_attempt",
    "webhook_delivery",
    "record_event",
    "submission",
    "dispatch_attempt",
    "agency_receipt",
    "dispatch",
    "declaration",
    "inventory_request",
    "risk_warning",
    "document",
    "match_record",
)


@dataclass
class Batch:
    purchases: int
    rows: dict[str, int]
    manifest: Path


@dataclass
class PurchasePruneReport:
    eligible: int = 0  # of a dry run
    batches: list[Batch] = field(default_factory=list)
    kept_unfinished_fanout: int = 0  # eligible but with webhook work left: kept for a later run

    @property
    def purchases(self) -> int:
        return sum(batch.purchases for batch in self.batches)


def _where(table: Table, column: str, values: set[Any]) -> Any:
    return table.c[column].in_(sorted(values, key=str))


async def _rows(session: AsyncSession, table_name: str, clause: Any) -> list[dict[str, Any]]:
    table = Base.metadata.tables[table_name]
    return [dict(row._mapping) for row in await session.execute(select(table).where(clause))]


async def _gather(session: AsyncSession, records: set[uuid.UUID]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the batch's purchases, per table."""
    t = Base.metadata.tables
    got: dict[str, list[dict[str, Any]]] = {}
    got["match_record"] = await _rows(session, "match_record", _where(t["match_record"], "id", records))
    got["document"] = await _rows(session, "document", _where(t["document"], "record_id", records))
    documents = {row["id"] for row in got["document"]}
    got["submission"] = await _rows(session, "submission", _where(t["submission"], "document_id", documents))
    events = t["record_event"]
    got["record_event"] = await _rows(
        session, "record_event", _where(events, "record_id", records) | _where(events, "document_id", documents)
    )
    event_ids = {row["id"] for row in got["record_event"]}
    deliveries = t["webhook_delivery"]
    # (subscription_id, event_id) is the unique key's order: naming the subscriptions lets the index serve.
    subscriptions = set((await session.scalars(select(t["subscription"].c.id))).all())
    got["webhook_delivery"] = await _rows(
        session,
        "webhook_delivery",
        _where(deliveries, "subscription_id", subscriptions) & _where(deliveries, "event_id", event_ids),
    )
    delivery_ids = {row["id"] for row in got["webhook_delivery"]}
    got["webhook_attempt"] = await _rows(
        session, "webhook_attempt", _where(t["webhook_attempt"], "delivery_id", delivery_ids)
    )
    got["dispatch"] = await _rows(session, "dispatch", _where(t["dispatch"], "record_id", records))
    dispatches = {row["id"] for row in got["dispatch"]}
    got["dispatch_attempt"] = await _rows(
        session, "dispatch_attempt", _where(t["dispatch_attempt"], "dispatch_id", dispatches)
    )
    for name in ("agency_receipt", "declaration", "inventory_request", "risk_warning"):
        got[name] = await _rows(session, name, _where(t[name], "record_id", records))
    return got


async def _fanout_pending(session: AsyncSession, got: dict[str, list[dict[str, Any]]]) -> set[uuid.UUID]:
    """The records with webhook work left: a delivery not final, or an event the fan-out has not read yet."""
    waiting = {row["event_id"] for row in got["webhook_delivery"] if row["status"] == "pending"}
    if await session.scalar(text("SELECT count(*) FROM subscription")):
        cursor = (
            await session.execute(
                text("SELECT tx, event_id FROM feed_cursor WHERE name = :name"), {"name": FANOUT_CURSOR}
            )
        ).first()
        position = (cursor[0], cursor[1]) if cursor else (0, 0)
        waiting |= {row["id"] for row in got["record_event"] if (row["tx"], row["id"]) > position}
    documents = {row["id"]: row["record_id"] for row in got["document"]}
    held: set[uuid.UUID] = set()
    for row in got["record_event"]:
        if row["id"] in waiting:
            held.add(row["record_id"] or documents[row["document_id"]])
    return held


def _write(folder: Path, got: dict[str, list[dict[str, Any]]], cutoff: datetime) -> Path:
    """One gzip file per table and a manifest; every file read back and counted before anything is deleted."""
    folder.mkdir(parents=True)
    tables: dict[str, dict[str, Any]] = {}
    for name in ORDER:
        path = folder / f"{name}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as out:
            for row in got[name]:
                out.write(json.dumps({k: plain_value(v) for k, v in row.items()}, ensure_ascii=False) + "\n")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        read_back = sum(1 for _ in read_export(path))
        if read_back != len(got[name]):
            raise RuntimeError(f"export {path} does not verify: {read_back} rows read of {len(got[name])}")
        tables[name] = {"file": path.name, "rows": len(got[name]), "sha256": digest}
    manifest = {
        "purchases": [[row["ebp_code"], row["order_no"]] for row in got["match_record"]],
        "cutoff": cutoff.isoformat(),
        "tables": tables,
        "format": "gzip, one JSON object per line (docs/storage.md)",
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


async def _delete(session: AsyncSession, got: dict[str, list[dict[str, Any]]]) -> None:
    for name in ORDER:
        table = Base.metadata.tables[name]
        if not got[name]:
            continue
        key = list(table.primary_key.columns)
        values = [tuple(row[column.name] for column in key) for row in got[name]]
        for low in range(0, len(values), 500):  # bounded IN lists
            chunk = values[low : low + 500]
            clause = key[0].in_([v[0] for v in chunk]) if len(key) == 1 else tuple_(*key).in_(chunk)
            result = await session.execute(delete(table).where(clause))
            if result.rowcount != len(chunk):  # type: ignore[attr-defined]
                raise RuntimeError(f"{name}: deleted {result.rowcount} rows of {len(chunk)} exported")  # type: ignore[attr-defined]


def _params(cutoff: datetime, limit: int, after: tuple[datetime, uuid.UUID]) -> dict[str, Any]:
    return {
        "cutoff": cutoff,
        "year": utcnow().astimezone(CHINA).year,
        "limit": limit,
        "after_at": after[0],
        "after_id": after[1],
    }


def _query(sql: str, ids: bool = False) -> Any:
    params: list[BindParameter[Any]] = [
        bindparam("final", value=[status.value for status in FINAL], expanding=True),
        bindparam("cutoff", type_=UTCDateTime()),
        bindparam("after_at", type_=UTCDateTime()),
        bindparam("after_id", type_=Uuid()),
    ]
    if ids:
        params.append(bindparam("ids", type_=Uuid(), expanding=True))
    return (
        text(sql)
        .bindparams(*params)
        .columns(id=Uuid(), ebp_code=String(), order_no=String(), status=String(), updated_at=UTCDateTime())
    )


async def _batch(
    engine: AsyncEngine, candidates: list[Any], cutoff: datetime, export_dir: Path, number: int
) -> tuple[Batch | None, int]:
    """Lock, check again, export, verify, delete, keep the keys, audit: one transaction. (batch, held back)."""
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        # The order-number locks the match stage takes: a resend in flight finishes before, or sees the tombstone.
        await advisory_xact_locks(session, {row.order_no for row in candidates}, ORDER_LOCKS)
        oldest = min(row.updated_at for row in candidates)
        params = _params(cutoff, len(candidates), (oldest, uuid.UUID(int=0)))
        rows = (
            await session.execute(_query(RECHECK, ids=True), params | {"ids": [row.id for row in candidates]})
        ).all()
        if not rows:
            return None, 0
        got = await _gather(session, {row.id for row in rows})
        held = await _fanout_pending(session, got)
        if held:
            kept = {row.id for row in rows} - held
            if not kept:
                return None, len(held)
            got = await _gather(session, kept)
            rows = [row for row in rows if row.id in kept]
        folder = export_dir / f"purchases_{utcnow():%Y%m%dT%H%M%S}_{number:05d}"
        manifest = await asyncio.to_thread(_write, folder, got, cutoff)
        await _delete(session, got)
        now = utcnow()
        await session.execute(
            insert(PrunedPurchase),
            [
                {
                    "ebp_code": row.ebp_code,
                    "order_no": row.order_no,
                    "record_id": row.id,
                    "status": row.status,
                    "last_change_at": row.updated_at,
                    "pruned_at": now,
                    "export": str(manifest),
                }
                for row in rows
            ],
        )
        counts = {name: len(got[name]) for name in ORDER}
        sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
        after = {"purchases": len(rows), "rows": counts, "manifest": str(manifest), "sha256": sha}
        await record_act(session, PRUNE_ACTOR, "purchases.pruned", "export", folder.name, after=after)
        await session.flush()
        await session.close()
    return Batch(len(rows), counts, manifest), len(held)


async def prune_purchases(
    engine: AsyncEngine, cutoff: datetime, export_dir: Path, *, batch_size: int = 500, dry_run: bool = False
) -> PurchasePruneReport:
    """Export, verify and delete the final purchases last changed before ``cutoff``, ``batch_size`` at a time."""
    report = PurchasePruneReport()
    after: tuple[datetime, uuid.UUID] = (datetime.min.replace(tzinfo=cutoff.tzinfo), uuid.UUID(int=0))
    number = 0
    while True:
        async with engine.connect() as conn:
            candidates = (await conn.execute(_query(ELIGIBLE), _params(cutoff, batch_size, after))).all()
        if not candidates:
            return report
        after = (candidates[-1].updated_at, candidates[-1].id)
        if dry_run:
            report.eligible += len(candidates)
            continue
        number += 1
        batch, held = await _batch(engine, list(candidates), cutoff, export_dir, number)
        report.kept_unfinished_fanout += held
        if batch is not None:
            report.batches.append(batch)
