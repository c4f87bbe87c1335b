"""Partition maintenance and retention (docs/storage.md): create the months ahead, and prune old months —
refuse any month still holding something not final, export it, verify the export, detach and drop it (PostgreSQL)
or delete its rows (SQLite), and audit the act in the same transaction."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, bindparam, delete, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.db import UTCDateTime, utcnow
from app.lifecycle.status import RecordStatus
from app.models import Base
from app.partitioning import (
    ADVISORY_LOCK,
    EXISTING_PARTITIONS_SQL,
    PARTITIONED,
    Month,
    create_default_sql,
    create_month_sql,
    month_of_partition,
    partition_name,
)
from app.services.audit import Actor, record_act
from app.services.fanout import FANOUT_CURSOR

log = logging.getLogger(__name__)

PRUNE_ACTOR = Actor("admin", "cli:sw prune")
FINAL_STATUSES = (RecordStatus.CLEARED, RecordStatus.REJECTED, RecordStatus.CANCELLED)
EXPORT_PAGE = 5000
DETACH_LOCK_TIMEOUT_MS = 2000
DETACH_ATTEMPTS = 10
DETACH_PAUSE_S = 1.0
LOCK_NOT_AVAILABLE = "55P03"

# Per table: the month's rows that are not final yet (docs/storage.md, "Retention"). ``:low``/``:high`` bound
# the month; each query counts.
NOT_FINAL: dict[str, str] = {
    "submission": """
        SELECT count(*) FROM submission s
        LEFT JOIN document d ON d.id = s.document_id
        LEFT JOIN match_record r ON r.id = d.record_id
        WHERE s.accepted_at >= :low AND s.accepted_at < :high
          AND (s.state <> 'done' OR (s.document_id IS NOT NULL AND (r.id IS NULL OR r.status NOT IN :final)))""",
    "record_event": """
        SELECT count(*) FROM record_event e
        LEFT JOIN match_record r ON r.id = e.record_id
        LEFT JOIN document d ON d.id = e.document_id
        LEFT JOIN match_record dr ON dr.id = d.record_id
        WHERE e.at >= :low AND e.at < :high
          AND ((e.record_id IS NOT NULL AND r.status NOT IN :final)
               OR (e.record_id IS NULL AND e.document_id IS NOT NULL
                   AND (dr.id IS NULL OR dr.status NOT IN :final))
               OR (:fanout AND (e.tx > :cursor_tx OR (e.tx = :cursor_tx AND e.id > :cursor_id)))
               OR e.id IN (SELECT w.event_id FROM webhook_delivery w WHERE w.status = 'pending'))""",
    "raw_message": """
        SELECT count(*) FROM raw_message m
        WHERE m.received_at >= :low AND m.received_at < :high
          AND (m.id IN (SELECT d.raw_message_id FROM document d LEFT JOIN match_record r ON r.id = d.record_id
                        WHERE r.id IS NULL OR r.status NOT IN :final)
               OR m.id IN (SELECT s.raw_message_id FROM submission s WHERE s.state IN ('pending', 'dead')))""",
    "dispatch_attempt": """
        SELECT count(*) FROM dispatch_attempt a JOIN dispatch d ON d.id = a.dispatch_id
        WHERE a.started_at >= :low AND a.started_at < :high AND d.status NOT IN ('delivered', 'dead')""",
    "webhook_attempt": """
        SELECT count(*) FROM webhook_attempt a JOIN webhook_delivery w ON w.id = a.delivery_id
        WHERE a.at >= :low AND a.at < :high AND w.status = 'pending'""",
}


class PruneRefused(Exception):
    """A month to prune still holds rows that are not final; nothing was touched."""

    def __init__(self, refusals: list[str]) -> None:
        super().__init__("; ".join(refusals))
        self.refusals = refusals


@dataclass(frozen=True)
class Pruned:
    table: str
    month: Month
    rows: int
    file: Path | None
    sha256: str | None


@dataclass
class PruneReport:
    pruned: list[Pruned] = field(default_factory=list)
    checked: list[tuple[str, Month, int]] = field(default_factory=list)  # (table, month, rows) of a dry run


def is_postgres(engine: AsyncEngine | AsyncConnection) -> bool:
    return engine.dialect.name == "postgresql"


# ---------------------------------------------------------------------------------------------- maintenance


async def existing_partitions(conn: AsyncConnection, table: str) -> list[str]:
    return sorted(str(row[0]) for row in await conn.execute(text(EXISTING_PARTITIONS_SQL), {"table": table}))


async def ensure(engine: AsyncEngine, ahead: int, now: datetime | None = None) -> list[str]:
    """Create the current month's partition and ``ahead`` more of every partitioned table, and the DEFAULT
    partitions, where missing; the names created. Nothing on SQLite. Safe to run from several processes."""
    if not is_postgres(engine):
        return []
    this_month = Month.of(now or utcnow())
    created: list[str] = []
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        for table in PARTITIONED:
            existing = set(await existing_partitions(conn, table))
            if f"{table}_default" not in existing:
                await conn.execute(text(create_default_sql(table)))
                created.append(f"{table}_default")
            for offset in range(ahead + 1):
                month = this_month.plus(offset)
                if partition_name(table, month) in existing:
                    continue
                for statement in create_month_sql(table, month):
                    await conn.execute(text(statement))
                created.append(partition_name(table, month))
    if created:
        log.info("partitions created: %s", ", ".join(created))
    return created


async def partition_sizes(engine: AsyncEngine) -> list[tuple[str, str, int]]:
    """(table, partition, rows) of every partition, for `sw partitions list`."""
    sizes: list[tuple[str, str, int]] = []
    async with engine.connect() as conn:
        for table in PARTITIONED:
            for name in await existing_partitions(conn, table):
                rows = await conn.scalar(text(f"SELECT count(*) FROM {name}"))  # noqa: S608 - catalog names
                sizes.append((table, name, int(rows or 0)))
    return sizes


async def keep_partitions(engine: AsyncEngine, ahead: int, interval_s: float, stop: asyncio.Event) -> None:
    """Run ``ensure`` now and every ``interval_s`` until ``stop`` (the worker's and the embedded app's task)."""
    while not stop.is_set():
        try:
            await ensure(engine, ahead)
        except Exception:  # a database outage must not end the loop: the DEFAULT partition catches the rows
            log.exception("partition maintenance failed")
        if interval_s <= 0:
            await stop.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


# ---------------------------------------------------------------------------------------------- prune


def _bounded(sql: str) -> TextClause:
    bounds = [bindparam("low", type_=UTCDateTime()), bindparam("high", type_=UTCDateTime())]
    if ":final" in sql:
        bounds.append(bindparam("final", value=[status.value for status in FINAL_STATUSES], expanding=True))
    return text(sql).bindparams(*bounds)


async def _not_final(conn: AsyncConnection, table: str, month: Month) -> int:
    params: dict[str, Any] = {"low": month.start(), "high": month.end()}
    if table == "record_event":
        # Events the fan-out has not read yet are not final — when there is anyone to fan out to.
        subscribed = await conn.scalar(text("SELECT count(*) FROM subscription")) or 0
        cursor = (
            await conn.execute(text("SELECT tx, event_id FROM feed_cursor WHERE name = :name"), {"name": FANOUT_CURSOR})
        ).first()
        params |= {"fanout": subscribed > 0, "cursor_tx": cursor[0] if cursor else 0}
        params["cursor_id"] = cursor[1] if cursor else 0
    return int(await conn.scalar(_bounded(NOT_FINAL[table]), params) or 0)


def _month_rows(table: str, month: Month) -> Any:
    model_table = Base.metadata.tables[table]
    column = model_table.c[PARTITIONED[table]]
    return model_table, (column >= month.start()) & (column < month.end())


async def _row_count(conn: AsyncConnection, table: str, month: Month) -> int:
    model_table, bound = _month_rows(table, month)
    return int(await conn.scalar(select(func.count()).select_from(model_table).where(bound)) or 0)


async def _candidates(conn: AsyncConnection, before: Month) -> list[tuple[str, Month]]:
    """(table, month) pairs older than ``before``: the month partitions on PostgreSQL (empty ones too), the
    months that have rows on SQLite."""
    found: list[tuple[str, Month]] = []
    for table in PARTITIONED:
        if is_postgres(conn):
            for name in await existing_partitions(conn, table):
                month = month_of_partition(name)
                if month is not None and month < before:
                    found.append((table, month))
            continue
        model_table, _ = _month_rows(table, before)
        column = model_table.c[PARTITIONED[table]]
        rows = await conn.execute(select(column).where(column < before.start()).distinct())
        found.extend((table, month) for month in sorted({Month.of(row[0]) for row in rows}))
    return sorted(set(found), key=lambda pair: (pair[1], pair[0]))


def plain_value(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


async def _export(conn: AsyncConnection, table: str, month: Month, export_dir: Path) -> tuple[Path, str, int]:
    """Write the month's rows to ``<table>_YYYYMM.jsonl.gz`` with its manifest; verify it reads back whole."""
    model_table, bound = _month_rows(table, month)
    path = export_dir / f"{table}_{month.suffix()}.jsonl.gz"
    written = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        # Pages by primary key, not a server-side cursor: a cursor still open on the partition would keep
        # the DROP out, and the whole month need not be in memory.
        (key,) = model_table.primary_key.columns
        last: Any = None
        while True:
            page_query = select(model_table).where(bound).order_by(key).limit(EXPORT_PAGE)
            if last is not None:
                page_query = page_query.where(key > last)
            page = (await conn.execute(page_query)).all()
            for row in page:
                out.write(json.dumps({k: plain_value(v) for k, v in row._mapping.items()}, ensure_ascii=False) + "\n")
            written += len(page)
            if len(page) < EXPORT_PAGE:
                break
            last = page[-1]._mapping[key.name]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {
        "table": table,
        "month": str(month),
        "rows": written,
        "sha256": digest,
        "columns": [c.name for c in model_table.columns],
        "format": "gzip, one JSON object per line (docs/storage.md)",
    }
    path.with_name(f"{table}_{month.suffix()}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    expected = await _row_count(conn, table, month)
    read_back = sum(1 for _ in read_export(path))
    if not (written == read_back == expected) or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise RuntimeError(f"export of {table} {month} does not verify: {written}/{read_back}/{expected} rows")
    return path, digest, written


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of an export file, as written (bytes columns come back as ``{"$base64": …}``)."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


async def _check(conn: AsyncConnection, pairs: list[tuple[str, Month]]) -> list[str]:
    refusals = []
    for table, month in pairs:
        if count := await _not_final(conn, table, month):
            refusals.append(f"{partition_name(table, month)}: {count} rows not final")
    return refusals


class DetachBlocked(RuntimeError):
    """The parent table stayed busy: its ACCESS EXCLUSIVE lock was not granted in any attempt. ``report`` holds
    the partitions pruned before it (each in its own transaction, so they stay pruned)."""

    report: PruneReport | None = None


async def _detach(conn: AsyncConnection, table: str, name: str) -> None:
    """Detach ``name`` from ``table`` without stalling the service behind the lock.

    DETACH takes ACCESS EXCLUSIVE on the parent, and a request queued for that lock blocks every later intake on
    the table while it waits for the readers ahead of it. ``DETACH … CONCURRENTLY`` would not need the lock, but
    PostgreSQL refuses it on a table with a DEFAULT partition, which ours have (docs/storage.md). So each attempt
    waits at most ``DETACH_LOCK_TIMEOUT_MS`` inside a savepoint: on a timeout only the savepoint rolls back — the
    month stays locked against writes and its export stays valid — and the next attempt comes after a pause."""
    for attempt in range(1, DETACH_ATTEMPTS + 1):
        try:
            async with conn.begin_nested():
                await conn.execute(text(f"SET LOCAL lock_timeout = '{DETACH_LOCK_TIMEOUT_MS}ms'"))
                await conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
                await conn.execute(text("SET LOCAL lock_timeout = 0"))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            log.warning("detaching %s: %s busy (attempt %d of %d)", name, table, attempt, DETACH_ATTEMPTS)
            await asyncio.sleep(DETACH_PAUSE_S * attempt)
    raise DetachBlocked(f"{table} stayed busy for {DETACH_ATTEMPTS} attempts; {name} is left in place")


async def _prune_one(engine: AsyncEngine, table: str, month: Month, export_dir: Path) -> Pruned:
    name = partition_name(table, month)
    async with engine.begin() as conn:
        if is_postgres(conn):
            # No row may arrive or change in the month between the check and the drop.
            await conn.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))
        if count := await _not_final(conn, table, month):
            raise PruneRefused([f"{name}: {count} rows not final"])
        path, digest, rows = await _export(conn, table, month, export_dir)
        if is_postgres(conn):
            await _detach(conn, table, name)
            await conn.execute(text(f"DROP TABLE {name}"))
        else:
            model_table, bound = _month_rows(table, month)
            await conn.execute(delete(model_table).where(bound))
        after = {"rows": rows, "file": str(path), "sha256": digest, "month": str(month), "table": table}
        session = AsyncSession(bind=conn)
        await record_act(session, PRUNE_ACTOR, "partition.pruned", "partition", name, after=after)
        await session.close()
    return Pruned(table, month, rows, path, digest)


async def prune(engine: AsyncEngine, before: Month, export_dir: Path, *, dry_run: bool = False) -> PruneReport:
    """Prune every month before ``before``: all of them are checked first, and if any holds a row that is not
    final, nothing is touched (PruneRefused). Each partition is then exported, verified, dropped and audited in
    its own transaction, checked once more under a lock."""
    async with engine.connect() as conn:
        pairs = await _candidates(conn, before)
        if refusals := await _check(conn, pairs):
            raise PruneRefused(refusals)
        report = PruneReport()
        if dry_run:
            report.checked = [(table, month, await _row_count(conn, table, month)) for table, month in pairs]
            return report
    await asyncio.to_thread(export_dir.mkdir, parents=True, exist_ok=True)
    for table, month in pairs:
        try:
            report.pruned.append(await _prune_one(engine, table, month, export_dir))
        except DetachBlocked as blocked:
            blocked.report = report
            raise
    return report


def retention_cutoff(retention_months: int, now: datetime | None = None) -> Month | None:
    """The first month kept under ``retention_months`` whole months before the current one (None: keep all)."""
    if retention_months <= 0:
        return None
    return Month.of(now or utcnow()).plus(-retention_months)
