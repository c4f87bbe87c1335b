"""Seeding the scale curve: purchases already stored, made by cloning real ones, set-based inside PostgreSQL.

The harness first sends a few *template* purchases through the API (``TP…`` order numbers) and lets the
dispatcher clear them, so that every row a real purchase leaves behind exists: the raw messages, the three
documents, the match record, the timeline events, the declaration (inventory and tax), the four dispatch rows
(delivered), their attempts and the agencies' receipts. :func:`seed` then copies those rows ``count`` times with
one ``INSERT … SELECT … FROM generate_series`` per table and chunk:

* every uuid becomes the copy number n (12 hex digits) followed by 20 hex digits of the template id's md5: the
  links between the copied rows stay consistent, and the copies append to the indexes in order;
* the template's order number becomes ``SD`` + 12 digits in every text, JSON and raw-body column (payment and
  waybill numbers contain it, so they follow), and its buyer's ID a buyer of the seeded range (district 110101,
  never used by the benchmark's own purchases, two purchases each, so the annual quota is read but not reached);
* the template record's id, where a JSON or text value holds it (a receipt's ``recordId``), becomes the copy's;
* the ``submission`` log is copied too (state ``done``, outcome and receipt kept, new ``seq`` numbers from its
  sequence), since accept's idempotency reads it by natural key. ``content_sha256`` stays the template's (a
  digest of content with the template's order number): nothing resends a seeded document, and a receipt's
  ``submissionSeq`` in the copied JSON still names the template's submission;
* every timestamp moves back by (1,000,000 − n) × 31 s: a million purchases spread over the past year.

Generating the rows server-side rather than streaming them with COPY avoids building 30+ million Python
tuples; PostgreSQL writes, indexes and WAL-logs each row exactly as it would for a COPY. ``ANALYZE`` follows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg

TEMPLATE_PREFIX = "TP"
SEED_PREFIX = "SD"
SCALE_MAX = 1_000_000
SHIFT_S = 31  # seconds between two seeded purchases, going back in time
CHUNK = 20_000

# Insert order (foreign keys) and how each table's template rows are found (the temp table seed_tpl holds the
# template records: record_id, tidx, t_order, t_buyer).
_ROWS = "SELECT x.*, s.tidx, s.t_order, s.t_buyer, s.record_id AS t_record FROM"
TEMPLATE_ROWS: list[tuple[str, str]] = [
    (
        # Every raw message of a template purchase: the ones its documents point at (their latest version) and
        # the ones its submissions point at (every accepted version).
        "raw_message",
        "SELECT DISTINCT ON (x.id) x.*, s.tidx, s.t_order, s.t_buyer, s.record_id AS t_record FROM raw_message x "
        "JOIN (SELECT raw_message_id, order_no FROM document WHERE order_no LIKE 'TP%' UNION "
        "SELECT raw_message_id, order_no FROM submission WHERE order_no LIKE 'TP%') u ON u.raw_message_id = x.id "
        "JOIN seed_tpl s ON s.t_order = u.order_no",
    ),
    ("match_record", f"{_ROWS} match_record x JOIN seed_tpl s ON s.record_id = x.id"),
    ("document", f"{_ROWS} document x JOIN seed_tpl s ON s.record_id = x.record_id"),
    # The accept log (state done, its business result kept): accept's idempotency reads it by natural key.
    ("submission", f"{_ROWS} submission x JOIN seed_tpl s ON s.t_order = x.order_no"),
    (
        "record_event",
        f"{_ROWS} record_event x JOIN seed_tpl s ON s.record_id = x.record_id UNION ALL "
        f"{_ROWS} record_event x JOIN document d ON d.id = x.document_id JOIN seed_tpl s ON s.record_id = d.record_id "
        "WHERE x.record_id IS NULL",
    ),
    ("declaration", f"{_ROWS} declaration x JOIN seed_tpl s ON s.record_id = x.record_id"),
    ("dispatch", f"{_ROWS} dispatch x JOIN seed_tpl s ON s.record_id = x.record_id"),
    (
        "dispatch_attempt",
        f"{_ROWS} dispatch_attempt x JOIN dispatch p ON p.id = x.dispatch_id "
        "JOIN seed_tpl s ON s.record_id = p.record_id",
    ),
    ("agency_receipt", f"{_ROWS} agency_receipt x JOIN seed_tpl s ON s.record_id = x.record_id"),
]
SKIP_COLUMNS = {("record_event", "id"), ("submission", "seq")}  # bigserial: the sequence numbers the copies

# What copy number g changes, computed once per copy (not once per row and column).
PER_COPY = (
    "SELECT g, lpad(to_hex(g), 12, '0') AS g_hex, "  # noqa: S608 - constants
    f"'{SEED_PREFIX}' || lpad(g::text, 12, '0') AS new_order, "
    "'110101' || to_char(date '1960-01-01' + ((g / 2) % 20000)::int, 'YYYYMMDD') "
    "|| lpad(((g / 2) / 20000 % 1000)::text, 3, '0') || '0' AS new_buyer, "
    f"make_interval(secs => ({SCALE_MAX} - g) * {SHIFT_S}) AS shift "
    "FROM generate_series($1::int, $2::int) g"
)


def _text(expr: str) -> str:
    # The template record's id, where JSON holds it (a receipt's recordId, an event's detail), becomes the copy's.
    new_record = "(c.g_hex || substr(md5(t_record::text), 1, 20))::uuid::text"
    return (
        f"replace(replace(replace({expr}, t_order, c.new_order), t_buyer, c.new_buyer), t_record::text, {new_record})"
    )


def _rewritten(column: str) -> tuple[str, str]:
    """A text-like column of the template row as text, and whether it holds the order number or the buyer."""
    return f'"{column}__text"', f'"{column}__keys"'


def column_expression(table: str, column: str, udt: str) -> str:
    """What a copied row holds in ``column``, from the template row ``x`` and the copy number ``g``."""
    c = f'x."{column}"'
    shift = "c.shift"
    if (table, column) == ("agency_receipt", "callback_id"):  # unique: a fresh id per copy
        return f"'seed_' || md5({c} || ':' || c.g)"
    if (table, column) == ("declaration", "decl_year"):
        return f"extract(year from (x.created_at - {shift}) AT TIME ZONE 'Asia/Shanghai')::int"
    if udt == "uuid":
        # The copy number first, then a digest of the template's id: unique, the same for every reference
        # to that row, and ascending with n, so that the copies append to the indexes rather than land at
        # random pages (which would make seeding a million purchases take an hour).
        return f'CASE WHEN {c} IS NULL THEN NULL ELSE (c.g_hex || x."{column}__h")::uuid END'
    if udt in TEXT_LIKE:
        # Only the values that hold the template's order number or buyer are rewritten (most JSON is not).
        text, keys = (f"x.{name}" for name in _rewritten(column))
        rewritten = _text(text)
        if udt == "jsonb":
            rewritten = f"{rewritten}::jsonb"
        elif udt == "bytea":
            rewritten = f"convert_to({rewritten}, 'UTF8')"
        return f"CASE WHEN {keys} THEN {rewritten} ELSE {c} END"
    if udt in ("timestamptz", "timestamp"):
        return f"{c} - {shift}"
    return c


TEXT_LIKE = ("jsonb", "varchar", "text", "bytea")


async def _columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [(r["column_name"], r["udt_name"]) for r in rows if (table, r["column_name"]) not in SKIP_COLUMNS]


async def prepare(conn: asyncpg.Connection) -> int:
    """Temp tables of the template rows (this connection only); how many template purchases there are."""
    await conn.execute(
        "CREATE TEMP TABLE seed_tpl AS SELECT id AS record_id, "
        "(row_number() OVER (ORDER BY order_no) - 1)::int AS tidx, order_no::text AS t_order, "
        "buyer_id_number::text AS t_buyer FROM match_record WHERE order_no LIKE $1",
        f"{TEMPLATE_PREFIX}%",
    )
    templates = int(await conn.fetchval("SELECT count(*) FROM seed_tpl"))
    if templates == 0:
        raise RuntimeError("no template purchases to clone")
    if await conn.fetchval("SELECT count(*) FROM seed_tpl WHERE t_buyer IS NULL"):
        raise RuntimeError("a template purchase has no order (no buyer)")
    for table, query in TEMPLATE_ROWS:
        await conn.execute(f"CREATE TEMP TABLE tpl_{table} AS {query}")
        await conn.execute(f"CREATE INDEX ON tpl_{table} (tidx)")
        for column, udt in await _columns(conn, table):
            if udt == "uuid":
                digest = f'substr(md5("{column}"::text), 1, 20)'
                await conn.execute(f'ALTER TABLE tpl_{table} ADD COLUMN "{column}__h" text')
                await conn.execute(f'UPDATE tpl_{table} SET "{column}__h" = {digest}')  # noqa: S608 - ours
            if udt not in TEXT_LIKE:
                continue
            text, keys = _rewritten(column)
            as_text = f"convert_from(\"{column}\", 'UTF8')" if udt == "bytea" else f'"{column}"::text'
            await conn.execute(f"ALTER TABLE tpl_{table} ADD COLUMN {text} text, ADD COLUMN {keys} boolean")
            found = (
                f"coalesce(strpos({as_text}, t_order) > 0 OR strpos({as_text}, t_buyer) > 0 "
                f"OR strpos({as_text}, t_record::text) > 0, false)"
            )
            await conn.execute(f"UPDATE tpl_{table} SET {text} = {as_text}, {keys} = {found}")  # noqa: S608
    await conn.execute("ANALYZE")
    return templates


async def _insert_sql(conn: asyncpg.Connection, table: str) -> str:
    columns = await _columns(conn, table)
    names = ", ".join(f'"{name}"' for name, _ in columns)
    values = ", ".join(column_expression(table, name, udt) for name, udt in columns)
    return (
        f"INSERT INTO {table} ({names}) SELECT {values} FROM tpl_{table} x "  # noqa: S608 - our own tables
        f"JOIN ({PER_COPY}) c ON c.g % $3::int = x.tidx"
    )


async def _secondary_indexes(dsn: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the seeded tables' indexes that back no constraint."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' "
            "AND i.tablename = ANY($1::text[]) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.indexname))::regclass)",
            [table for table, _ in TEMPLATE_ROWS],
        )
    finally:
        await conn.close()
    # A partitioned table's index reads "CREATE INDEX … ON ONLY": run as it is, it would build the parent's index
    # alone (invalid) and leave every partition without it — the accept lookup then scanned whole partitions.
    return [(r["indexname"], r["indexdef"].replace(" ON ONLY ", " ON ", 1)) for r in rows]


async def _run_all(dsn: str, statements: list[str], connections: int) -> None:
    pending = list(statements)

    async def worker() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET statement_timeout = 0; SET maintenance_work_mem = '256MB'")
            while pending:
                await conn.execute(pending.pop(0))
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(pending))))))


async def seed(
    dsn: str, start: int, stop: int, progress: Callable[[str], Any] | None = None, connections: int = 3
) -> dict[str, Any]:
    """Store purchases number ``start`` .. ``stop - 1`` (clones of the templates); rows per table, seconds.

    Chunks of ``CHUNK`` purchases, one transaction each, spread over ``connections`` sessions."""
    if stop > SCALE_MAX:
        raise ValueError(f"at most {SCALE_MAX} seeded purchases")
    counts: dict[str, int] = dict.fromkeys((t for t, _ in TEMPLATE_ROWS), 0)
    chunks = [(low, min(low + CHUNK, stop) - 1) for low in range(start, stop, CHUNK)]
    done = 0
    began = time.perf_counter()

    async def worker() -> None:
        nonlocal done
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET statement_timeout = 0")
            templates = await prepare(conn)
            statements = [(table, await _insert_sql(conn, table)) for table, _ in TEMPLATE_ROWS]
            superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            while chunks:
                low, high = chunks.pop(0)
                async with conn.transaction():
                    if superuser:
                        # The copies are consistent by construction (cloned from consistent rows, ids mapped
                        # alike): skip the per-row foreign-key triggers, as a restore does.
                        await conn.execute("SET LOCAL session_replication_role = replica")
                    for table, sql in statements:
                        status = await conn.execute(sql, low, high, templates)
                        counts[table] += int(status.rsplit(" ", 1)[-1])
                done += high - low + 1
                if progress is not None:
                    progress(f"seeded {done:,} of {stop - start:,} purchases ({time.perf_counter() - began:.0f} s)")
        finally:
            await conn.close()

    # Adding more rows than there are: the secondary indexes are dropped and built again after the inserts,
    # sorted in one pass, as a restore does (the same definitions, read from pg_indexes).
    rebuild = await _secondary_indexes(dsn) if stop - start > start else []
    if rebuild:
        await _run_all(dsn, [f'DROP INDEX "{name}"' for name, _ in rebuild], connections)
    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(chunks))))))
    built = time.perf_counter()
    if rebuild:
        if progress is not None:
            progress(f"building {len(rebuild)} secondary indexes again")
        # One table's indexes one after another: on a partitioned table PostgreSQL names each partition's index
        # itself, and two built at once can pick the same name (…_seq_idx for two indexes on seq).
        per_table: dict[str, list[str]] = {}
        for _, definition in rebuild:
            per_table.setdefault(definition.split(" ON ", 1)[1].split(" USING ", 1)[0], []).append(definition)
        await _run_all(dsn, ["; ".join(definitions) for definitions in per_table.values()], connections)
    analysed = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return {
        "purchases": stop - start,
        "rows": counts,
        "insert_s": round(built - began, 2),
        "index_rebuild_s": round(analysed - built, 2),
        "indexes_rebuilt": len(rebuild),
        "analyze_s": round(time.perf_counter() - analysed, 2),
    }
