"""Monthly partitions against one heap (docs/storage.md): intake and queries by key on PostgreSQL, the same
workload on two scratch databases — one migrated to the revision before partitioning, one to head.

Each database is seeded with ``--rows`` accepted documents spread over the last twelve months (submission, raw
message and two feed events per document, written by ``generate_series`` in the database; the events' ``tx``
spread 500 to a transaction, as the matcher's micro-batches write them: all in one transaction, the planner's
custom plans misjudge a cursor inside it — docs/storage.md), then measured on one connection:

* intake: the accept path's single statement (``app.services.accept_pg.ACCEPT_ONE``) for new documents;
* latest submission of a key (the accept path's check; no date bound, so every month is probed);
* the same with the day the key was written (pruned to those partitions);
* a page of the feed from a cursor (position order across every month).

``./scripts/uv run --frozen python -m bench.partitions --url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``
(``--rows 100000`` by default, a few minutes; ``--rows 1000000`` is the full comparison). The databases are
created and dropped by the bench. One connection, so the figures are latencies of one client, not capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy.engine.url import make_url

from app.config import Settings
from app.db import create_engine, utcnow
from app.migrate import upgrade
from app.partitioning import Month
from app.services.accept_pg import ACCEPT_ONE
from app.services.partitions import ensure

UNPARTITIONED = "0009_risk_credit"

SEED = """
INSERT INTO raw_message (id, sha256, content_type, body, sender, received_at)
SELECT md5('raw' || n)::uuid, md5(n::text) || md5(n::text), 'application/json', convert_to(repeat('x', 600), 'UTF8'),
       'BENCH', now() - make_interval(secs => (n::bigint * 31535999 / $1))
FROM generate_series(1, $1) AS n;

INSERT INTO submission (doc_type, owner_code, business_no, order_no, app_type, app_status, guid, content_sha256,
                        payload, sender_code, actor, raw_message_id, item_index, accepted_at, state, attempts)
SELECT 'order', 'BENCHEBP01', 'B' || n, 'B' || n, '1', '2', md5('g' || n)::uuid::text, md5(n::text) || md5(n::text),
       '{"orderNo": "x"}'::jsonb, 'BENCHEBP01', 'bench', md5('raw' || n)::uuid, 0,
       now() - make_interval(secs => (n::bigint * 31535999 / $1)), 'done', 1
FROM generate_series(1, $1) AS n;

INSERT INTO record_event (record_id, document_id, kind, actor, at, detail, tx)
SELECT NULL, NULL, 'status_changed', 'bench', now() - make_interval(secs => (n::bigint * 31535999 / ($1 * 2))),
       jsonb_build_object('record', md5('r' || (n / 2))::uuid),
       (pg_current_xact_id()::text)::bigint - ($1 * 2 - n) / 500 - 1
FROM generate_series(1, $1 * 2) AS n;
"""


async def _admin(url: str, sql: str) -> None:
    server = make_url(url).set(drivername="postgresql")
    connection = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _timed(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "per_s": round(len(samples) / sum(samples), 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


def _slowest(samples: list[float], positions: list[Any]) -> dict[str, Any]:
    """The slow tail of the feed pages: the worst page, its cursor and which page it was (the first five run
    custom plans, the rest the prepared statement's generic plan), to tell a cursor that is slow every time from
    a machine that was busy once. ``positions[n]`` is the cursor of page n."""
    worst = max(range(len(samples)), key=samples.__getitem__)
    ordered = sorted(samples)
    cursor = positions[worst]
    return {
        "p999_ms": round(ordered[int(len(ordered) * 0.999) - 1] * 1000, 3),
        "max_ms": round(samples[worst] * 1000, 3),
        "slowest_cursor": f"{cursor['tx']}.{cursor['id']}",
        "slowest_page": worst,
    }


async def _measure(dsn: str, rows: int, operations: int) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await connection.execute(SEED.replace("$1", str(int(rows))))
        await connection.execute("ANALYZE")
        seed_s = time.perf_counter() - started
        figures: dict[str, Any] = {"seed_s": round(seed_s, 1)}

        intake = []
        for n in range(operations):
            arguments = (
                "order", "BENCHEBP01", f"NEW{n}", "f" * 64, "1", uuid.uuid4(), "e" * 64, "application/json",
                b"{}", "BENCHEBP01", utcnow(), f"NEW{n}", "2", str(uuid.uuid4()), json.dumps({"n": n}),
                "BENCHEBP01", 0,
            )  # fmt: skip
            t = time.perf_counter()
            await connection.fetchrow(ACCEPT_ONE, *arguments)
            intake.append(time.perf_counter() - t)
        figures["intake"] = _timed(intake)

        latest = []
        for n in range(operations):
            t = time.perf_counter()
            await connection.fetchrow(
                "SELECT seq FROM submission WHERE doc_type = 'order' AND owner_code = 'BENCHEBP01' "
                "AND business_no = $1 ORDER BY seq DESC LIMIT 1",
                f"B{(n * 7919) % rows + 1}",
            )
            latest.append(time.perf_counter() - t)
        figures["latest_submission_of_a_key"] = _timed(latest)

        # The same key with the day it was written (the console and statistics know their period): pruned to
        # the partitions of those two days.
        bounded = []
        now = utcnow()
        for n in range(operations):
            key = (n * 7919) % rows + 1
            written = now - timedelta(seconds=key * 31535999 // rows)
            t = time.perf_counter()
            await connection.fetchrow(
                "SELECT seq FROM submission WHERE doc_type = 'order' AND owner_code = 'BENCHEBP01' "
                "AND business_no = $1 AND accepted_at >= $2 AND accepted_at < $3 ORDER BY seq DESC LIMIT 1",
                f"B{key}",
                written - timedelta(days=1),
                written + timedelta(days=1),
            )
            bounded.append(time.perf_counter() - t)
        figures["submission_of_a_key_with_its_day"] = _timed(bounded)

        # A page of the feed from a cursor (position order across every month): the cursor of the n-th page is
        # the position of the (n*7919 mod 2*rows)-th event, read for those pages only.
        first, events = await connection.fetchrow("SELECT min(id), count(*) FROM record_event")
        wanted = [first + (n * 7919) % events for n in range(operations)]
        rows_wanted = await connection.fetch("SELECT tx, id FROM record_event WHERE id = ANY($1)", wanted)
        by_id = {r["id"]: r for r in rows_wanted}
        positions = [by_id[event_id] for event_id in wanted]
        pages = []
        for cursor in positions:
            t = time.perf_counter()
            await connection.fetch(
                "SELECT id FROM record_event WHERE (tx, id) > ($1, $2) ORDER BY tx, id LIMIT 100",
                cursor["tx"],
                cursor["id"],
            )
            pages.append(time.perf_counter() - t)
        figures["feed_page_from_a_cursor"] = _timed(pages) | _slowest(pages, positions)
        return figures
    finally:
        await connection.close()


async def run(url: str, rows: int, operations: int) -> dict[str, Any]:
    results: dict[str, Any] = {"rows": rows, "operations": operations}
    for layout, revision in (("unpartitioned", UNPARTITIONED), ("partitioned", "head")):
        name = f"sw_bench_parts_{uuid.uuid4().hex[:8]}"
        await _admin(url, f'CREATE DATABASE "{name}"')
        database = make_url(url).set(database=name)
        try:
            settings = Settings(database_url=database.render_as_string(hide_password=False), _env_file=None)  # type: ignore[call-arg]
            await asyncio.to_thread(upgrade, settings, revision)
            if layout == "partitioned":
                # The twelve months the seed spans, as `sw partitions ensure` would have made them month by month.
                engine = create_engine(settings)
                try:
                    await ensure(engine, 15, now=Month.of(utcnow()).plus(-12).start())
                finally:
                    await engine.dispose()
            dsn = database.set(drivername="postgresql").render_as_string(hide_password=False)
            results[layout] = await _measure(dsn, rows, operations)
        finally:
            await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=100_000, help="Documents stored before measuring")
    parser.add_argument("--operations", type=int, default=2_000, help="Timed operations of each kind")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.url, args.rows, args.operations))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
