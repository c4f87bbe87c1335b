"""The recovery time (RTO) of a store of N purchases, measured: backed up, restored, answering again.

Everything runs on a throwaway PostgreSQL cluster of its own (``initdb`` on a free port under a temporary folder,
``tests/pg_cluster.py``, as the backup drill does); the machine's main cluster is never touched.

1. A new cluster, a database migrated to head, partitions for the twelve months the seed spans.
2. ``sw serve`` (embedded matcher, dispatcher and mock agencies) takes a few *template* purchases through the
   API and clears them; bench/seed.py clones them into N purchases inside PostgreSQL.
3. ``pg_basebackup -X stream -c fast`` into a backup folder; the original cluster is stopped (it is "lost").
4. **Restore**: the backup folder is copied to a new data folder (what fetching a base backup from its store
   amounts to on one disk), the server is started on it (WAL replay up to the backup's end), and the check runs:
   the counts of every key table equal the original's, and one purchase in the middle of the range is read
   through the app's own query (``app.services.records.get_record``) with its three documents and its status.

RTO = copy + start + time to that first correct answer. The backup's own time is printed too (it runs before
the loss, so it is not part of the RTO, but it bounds how often one can be taken).

``./scripts/uv run --frozen python -m bench.restore --purchases 1000000``: 27 min on the shared 2-core machine (19 of
them seeding), and 2.2 times the database's size free on disk while the original and its backup coexist (55 GB
at 1 M; the original is deleted before the copy). Figures in docs/scaling.md. ``--json`` prints them as JSON too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.config import Settings
from app.db import create_engine, create_sessionmaker, utcnow
from app.migrate import upgrade
from app.partitioning import Month
from app.services.auth import Principal
from app.services.partitions import ensure
from app.services.records import get_record
from bench import seed as seeding
from bench import workload
from tests.live import clean_env, live_sw
from tests.pg_cluster import Cluster, base_backup, clusters, new_cluster, pg_bin

DATABASE = "sw_restore"
ADMIN_TOKEN = "restore-admin-token-0123456789"  # noqa: S105 - the throwaway cluster's own service, never a real one
# Counted on the original before the backup and on the restored copy: every key table of a purchase.
COUNTED = ("match_record", "document", "declaration", "dispatch", "agency_receipt", "submission", "raw_message")
FINAL_DISPATCH = ("delivered", "dead")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _wait(what: str, dsn: str, sql: str, timeout_s: float = 300) -> None:
    """Until ``sql`` counts 0."""
    deadline = time.monotonic() + timeout_s
    conn = await asyncpg.connect(dsn)
    try:
        while (left := int(await conn.fetchval(sql))) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {left} left after {timeout_s} s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def make_templates(url: str, dsn: str, count: int) -> dict[str, int]:
    """``count`` real purchases through ``sw serve`` on ``url``, matched and their dispatches final."""
    env = clean_env(
        SW_DATABASE_URL=url,
        SW_ADMIN_TOKEN=ADMIN_TOKEN,
        SW_DISPATCH_POLL_S="0.2",
        # Nothing held for inspection: the mock agencies cannot call a release back to this service.
        SW_SUPERVISION_RATE_REGULAR="0",
        SW_RISK_INSPECT_ON_WARNING="false",
    )
    with live_sw("serve", env, "/readyz") as server:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
            keys = await workload.file_everything(client, ADMIN_TOKEN)
            for purchase in workload.purchases(seeding.TEMPLATE_PREFIX, 0, count):
                for doc_type, body in purchase.documents().items():
                    owner = body[workload.OWNER_FIELD[doc_type]]
                    response = await client.post(
                        f"/api/v1/{workload.PATHS[doc_type]}", json=body, headers={"X-API-Key": keys[owner]}
                    )
                    if response.status_code not in (200, 201, 202):
                        raise RuntimeError(f"template {doc_type}: {response.status_code} {response.text[:300]}")
        await _wait("templates matched", dsn, "SELECT count(*) FROM submission WHERE state = 'pending'")
        await _wait(
            "templates dispatched",
            dsn,
            f"SELECT count(*) FROM dispatch WHERE status NOT IN {FINAL_DISPATCH}",  # noqa: S608 - constants
        )
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM match_record GROUP BY status")
    finally:
        await conn.close()
    return {r["status"]: int(r["n"]) for r in rows}


async def counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}")) for table in COUNTED}  # noqa: S608
    finally:
        await conn.close()


async def sample(dsn: str, order_no: str) -> tuple[uuid.UUID, str]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT id, status FROM match_record WHERE order_no = $1", order_no)
    finally:
        await conn.close()
    if row is None:
        raise RuntimeError(f"no record of {order_no} on the original")
    return row["id"], row["status"]


async def first_correct_answer(url: str, dsn: str, expected: dict[str, int], record: tuple[uuid.UUID, str]) -> None:
    """The restored copy's counts are the original's, and the sample purchase reads whole through the app."""
    found = await counts(dsn)
    if found != expected:
        raise RuntimeError(f"restored counts {found} differ from the original's {expected}")
    engine = create_engine(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    try:
        async with create_sessionmaker(engine)() as session:
            detail = await get_record(session, Principal(kind="admin", key_id="restore-check"), record[0])
    finally:
        await engine.dispose()
    if detail.status != record[1] or len(detail.documents) != 3:
        raise RuntimeError(f"sample record read back as {detail.status} with {len(detail.documents)} documents")


def copy_folder(source: Path, target: Path) -> float:
    """``cp -a`` (owner and modes kept, as the server requires of its data folder); seconds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the server runs as postgres (it refuses root): the folder is its
        shutil.chown(target.parent, "postgres", "postgres")
    started = time.monotonic()
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)  # noqa: S603,S607 - our own folders
    subprocess.run(["sync"], check=True)  # noqa: S607 - the copy is on disk, as a restore must be
    return time.monotonic() - started


async def run(purchases: int, templates: int, workdir: Path | None) -> dict[str, Any]:
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError("needs the PostgreSQL server binaries (initdb, pg_basebackup)")
    # Absolute: the server is started from it, and its socket path must stay short (107 bytes at most).
    folder = await asyncio.to_thread(lambda: Path(tempfile.mkdtemp(prefix="rto-", dir=workdir)).resolve())
    figures: dict[str, Any] = {"purchases": purchases, "templates": templates}
    try:
        with clusters() as made:
            original = new_cluster(folder / "orig", bin_dir, max_wal_size="4GB", checkpoint_timeout="30min")
            made.append(original)
            original.start()
            original.psql(f"CREATE DATABASE {DATABASE}")
            url, dsn = original.url(DATABASE, "postgresql+asyncpg"), original.url(DATABASE)
            settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
            await asyncio.to_thread(upgrade, settings)
            engine = create_engine(settings)
            try:  # the twelve months the seed spans, as `sw partitions ensure` would have made them
                await ensure(engine, 15, now=Month.of(utcnow()).plus(-12).start())
            finally:
                await engine.dispose()
            log(f"cluster in {folder}; sending {templates} template purchases through sw serve")
            figures["template_statuses"] = await make_templates(url, dsn, templates)
            log(f"templates: {figures['template_statuses']}; seeding {purchases:,} purchases")
            seeded = await seeding.seed(dsn, 0, purchases, log)
            figures["seed_s"] = round(seeded["insert_s"] + seeded["index_rebuild_s"] + seeded["analyze_s"], 1)
            expected = await counts(dsn)
            record = await sample(dsn, seeding.SEED_PREFIX + f"{purchases // 2:012d}")
            figures["counts"] = expected
            figures["database_mb"] = round(int(original.psql(f"SELECT pg_database_size('{DATABASE}')")) / 1e6)
            log(f"seeded in {figures['seed_s']} s; database {figures['database_mb']:,} MB; backing up")
            backup, figures["backup_s"] = await asyncio.to_thread(base_backup, original, folder / "backup")
            figures["backup_mb"] = round(_size(backup.data) / 1e6)
            original.stop()  # the original is lost: only the backup is left (and its disk is freed for the copy)
            shutil.rmtree(original.data.parent, ignore_errors=True)
            log(f"backup {figures['backup_s']:.1f} s ({figures['backup_mb']:,} MB); restoring")

            lost_at = time.monotonic()
            restored = Cluster(folder / "restored" / "data", backup.port, bin_dir)
            figures["copy_s"] = await asyncio.to_thread(copy_folder, backup.data, restored.data)
            made.append(restored)
            figures["start_s"] = await asyncio.to_thread(restored.start)
            answered = time.monotonic()
            await first_correct_answer(
                restored.url(DATABASE, "postgresql+asyncpg"), restored.url(DATABASE), expected, record
            )
            figures["first_answer_s"] = time.monotonic() - answered
            figures["rto_s"] = time.monotonic() - lost_at
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for name in ("backup_s", "copy_s", "start_s", "first_answer_s", "rto_s"):
        figures[name] = round(figures[name], 2)
    return figures


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purchases", type=int, default=100_000, help="Purchases stored before the backup")
    parser.add_argument("--templates", type=int, default=16, help="Real purchases the seed clones")
    parser.add_argument("--workdir", type=Path, default=None, help="Where the clusters go (default: the temp dir)")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.purchases, args.templates, args.workdir))
    print(
        f"{figures['purchases']:,} purchases: database {figures['database_mb']:,} MB, backup {figures['backup_s']} s "
        f"({figures['backup_mb']:,} MB); restore: copy {figures['copy_s']} s, start (recovery) {figures['start_s']} s, "
        f"first correct answer {figures['first_answer_s']} s; RTO {figures['rto_s']} s"
    )
    if args.json:
        print(json.dumps(figures, default=str))
    return figures


if __name__ == "__main__":
    main()
