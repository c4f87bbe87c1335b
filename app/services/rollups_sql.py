# ruff: noqa: S608 - the SQL is built from this module's constants alone; no input reaches it
"""``sw stats rebuild`` in SQL: every rollup cell recomputed by the database in two set-based statements,
``INSERT INTO stats_rollup SELECT … GROUP BY …`` and the daily table from the hourly one, on PostgreSQL and
SQLite alike.

The definition stays the pure ``app.rules.rollups.contribution`` (and ``document_cells``, ``risk_cells``);
this is the same sum written as SQL, one ``SELECT`` per kind of cell, ``UNION ALL``-ed and grouped.
``tests/test_stats_rebuild_sql.py`` holds it to the Python sum (``app.services.rollups.recompute``) over
records of every status, clock and reason, on both backends. Per backend only a few fragments differ: the hour
of a timestamp (PostgreSQL ``date_trunc`` in UTC; SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff`` text, so the
hour is a prefix), a span in microseconds, iterating a JSON array or object, and the tax in 1/100,000 yuan.

The per-record Python took 156 s at 100 k purchases; this moves no row out of the database
(docs/statistics.md has the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.rules.rollups import CREDIT_ORDER, LAST_BUCKET

MICROS = 1_000_000


@dataclass(frozen=True)
class Dialect:
    """The SQL that differs between the backends, as format strings over a column expression."""

    hour: str  # {x}: a timestamp → the start of its hour, as the rollup's hour column stores it
    day: str  # {x}: an hour → the start of its UTC day
    micros: str  # {a}, {b}: b − a in whole microseconds
    e5: str  # {x}: a tax amount → integer 1/100,000 yuan (NULL stays NULL)
    array: str  # {x}: a JSON array → rows of one column ``value`` (each element)
    text_of: str  # {x}, {k}: a JSON object column's member k as text
    member: str  # {k}: member k, as text, of the element ``e.value`` when it is an object (else NULL)
    object_items: str  # {x}: a JSON object → rows of (``key``, ``value``)
    levels: str  # {x}: a decision's {"levels": {party: level}} → rows of one column ``value`` (the level)


POSTGRESQL = Dialect(
    hour="(date_trunc('hour', {x} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')",
    day="(date_trunc('day', {x} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')",
    micros="CAST(round(EXTRACT(EPOCH FROM ({b} - {a})) * 1000000) AS BIGINT)",
    e5="CAST(round({x} * 100000) AS BIGINT)",
    array="jsonb_array_elements(CASE WHEN jsonb_typeof({x}) = 'array' THEN {x} ELSE '[]'::jsonb END) AS e(value)",
    text_of="({x} ->> '{k}')",
    member="(CASE WHEN jsonb_typeof(e.value) = 'object' THEN e.value ->> '{k}' END)",
    object_items="jsonb_each(CASE WHEN jsonb_typeof({x}) = 'object' THEN {x} ELSE '{{}}'::jsonb END) AS e(key, value)",
    levels="jsonb_each_text(CASE WHEN jsonb_typeof({x} -> 'levels') = 'object' THEN {x} -> 'levels' "
    "ELSE '{{}}'::jsonb END) AS l(key, value)",
)
# SQLite keeps SQLAlchemy's text form of a UTC timestamp: the hour is its first 13 characters; a span is
# whole seconds (strftime %s of the text before the dot: SQLite rounds fractions to milliseconds) and the
# microseconds after it, exact.
SQLITE = Dialect(
    hour="(substr({x}, 1, 13) || ':00:00.000000')",
    day="(substr({x}, 1, 10) || ' 00:00:00.000000')",
    micros="((CAST(strftime('%s', substr({b}, 1, 19)) AS INTEGER)"
    " - CAST(strftime('%s', substr({a}, 1, 19)) AS INTEGER)) * 1000000"
    " + CAST(substr({b}, 21, 6) AS INTEGER) - CAST(substr({a}, 21, 6) AS INTEGER))",
    e5="CAST(round(CAST({x} AS REAL) * 100000) AS INTEGER)",
    array="json_each(CASE WHEN json_type({x}) = 'array' THEN {x} ELSE '[]' END) AS e",
    text_of="json_extract({x}, '$.{k}')",
    # json_each's value of a string element is plain text, not JSON: read members of objects only.
    member="(CASE WHEN e.type = 'object' THEN json_extract(e.value, '$.{k}') END)",
    object_items="json_each(CASE WHEN json_type({x}) = 'object' THEN {x} ELSE '{{}}' END) AS e",
    levels="json_each(CASE WHEN json_type({x}, '$.levels') = 'object' THEN json_extract({x}, '$.levels') "
    "ELSE '{{}}' END) AS l",
)


def _bucket(micros: str, low: int = 0, high: int = LAST_BUCKET) -> str:
    """``duration_bucket`` on integer microseconds, as a binary search of CASEs: bucket b ≥ 1 starts at
    2^(b−1) s. (Nested, the span is computed about 5 times a row; a flat ladder of 23 WHENs cost 23.)"""
    if low == high:
        return f"'{low:02d}'"
    middle = (low + high + 1) // 2
    edge = 2 ** (middle - 1) * MICROS
    return (
        f"CASE WHEN {micros} >= {edge} THEN {_bucket(micros, middle, high)} ELSE {_bucket(micros, low, middle - 1)} END"
    )


def _cells(d: Dialect) -> str:
    """Every cell's contribution, one row each: (hour, metric, code, parties…, n, amount_e5)."""
    parties = "r.ebp_code, COALESCE(r.ebc_code, ''), COALESCE(r.trade_mode, ''), COALESCE(r.port_code, '')"
    tax = f"COALESCE({d.e5.format(x='r.tax_total')}, 0)"
    rejection = " ".join(
        (
            f"COALESCE(NULLIF({d.text_of.format(x='r.rejection', k='cebReturnStatus')}, ''),",
            f"NULLIF({d.text_of.format(x='r.rejection', k='code')}, ''), '')",
        )
    )
    spans = {
        "t_match": ("r.documents_last_at", "r.matched_at"),
        "t_customs": ("r.customs_accepted_at", "r.settled_at"),
        "t_e2e": ("r.documents_first_at", "r.settled_at"),
    }
    cleared = "r.status = 'CLEARED' AND r.settled_at IS NOT NULL"
    selects = [
        f"SELECT {d.hour.format(x='r.created_at')}, 'purchases', r.status, {parties}, 1, {tax} FROM match_record r",
        f"SELECT {d.hour.format(x='r.matched_at')}, 'matched', '', {parties}, 1, 0 FROM match_record r "
        "WHERE r.matched_at IS NOT NULL",
        # Once per distinct reason code of a purchase mismatched now.
        f"SELECT {d.hour.format(x='COALESCE(r.documents_last_at, r.created_at)')}, 'mismatch', m.code, {parties}, 1, 0 "
        f"FROM match_record r JOIN (SELECT DISTINCT r.id AS id, {d.member.format(k='code')} AS code "
        f"FROM match_record r, {d.array.format(x='r.discrepancies')} WHERE r.status = 'MISMATCHED') m "
        "ON m.id = r.id WHERE m.code IS NOT NULL AND m.code <> ''",
        f"SELECT {d.hour.format(x='COALESCE(r.settled_at, r.created_at)')}, 'rejection', {rejection}, {parties}, 1, 0 "
        "FROM match_record r WHERE r.status = 'REJECTED'",
        f"SELECT {d.hour.format(x='r.created_at')}, 'agency', e.key || ':' || {d.member.format(k='state')}, "
        f"{parties}, 1, 0 FROM match_record r, {d.object_items.format(x='r.agencies')} "
        f"WHERE {d.member.format(k='state')} IS NOT NULL AND {d.member.format(k='state')} <> ''",
        f"SELECT {d.hour.format(x='r.settled_at')}, 'tax', '', {parties}, 1, {tax} FROM match_record r WHERE {cleared}",
        *(
            f"SELECT {d.hour.format(x='r.settled_at')}, '{measure}', {_bucket(d.micros.format(a=start, b=end))}, "
            f"{parties}, 1, 0 FROM match_record r WHERE {cleared} AND {start} IS NOT NULL AND {end} IS NOT NULL"
            for measure, (start, end) in spans.items()
        ),
    ]
    outcome = "COALESCE(s.outcome, '')"
    platform = "CASE WHEN s.doc_type = 'order' THEN s.owner_code ELSE '' END"
    selects += [
        f"SELECT {d.hour.format(x='s.accepted_at')}, 'documents', s.doc_type || ':' || {outcome}, {platform}, "
        "'', '', '', 1, 0 FROM submission s WHERE s.state = 'done'",
        f"SELECT {d.hour.format(x='s.accepted_at')}, 'document_rejection', "
        f"COALESCE(NULLIF({d.text_of.format(x='s.result', k='code')}, ''), ''), {platform}, '', '', '', 1, 0 "
        "FROM submission s WHERE s.state = 'done' AND s.outcome = 'rejected'",
    ]
    # The declare stage's decisions under the strictest party's level, and the warnings they raised.
    rank = " ".join(f"WHEN '{level}' THEN {i}" for i, level in enumerate(CREDIT_ORDER))
    level = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(CREDIT_ORDER))
    decided = f"d.risk IS NOT NULL AND {d.text_of.format(x='d.risk', k='decision')} IS NOT NULL"
    selects += [
        f"SELECT {d.hour.format(x='d.created_at')}, 'decision', "
        f"(CASE COALESCE((SELECT MAX(CASE l.value {rank} ELSE 2 END) FROM {d.levels.format(x='d.risk')}), 2) "
        f"{level} END) || ':' || {d.text_of.format(x='d.risk', k='decision')}, {parties}, 1, 0 "
        f"FROM declaration d JOIN match_record r ON r.id = d.record_id WHERE {decided}",
        f"SELECT {d.hour.format(x='d.created_at')}, 'warning', w.rule, {parties}, 1, 0 FROM risk_warning w "
        f"JOIN declaration d ON d.record_id = w.record_id JOIN match_record r ON r.id = d.record_id WHERE {decided}",
    ]
    return "\nUNION ALL\n".join(selects)


KEYS = "hour, metric, code, ebp_code, ebc_code, trade_mode, port_code"


def rebuild_statements(dialect_name: str) -> tuple[str, str]:
    """The hourly table from the records, then the daily one from the hourly (both tables start empty)."""
    d = POSTGRESQL if dialect_name == "postgresql" else SQLITE
    hourly = (
        f"WITH c ({KEYS}, n, amount_e5) AS ({_cells(d)}) "
        f"INSERT INTO stats_rollup ({KEYS}, n, amount_e5) "
        f"SELECT {KEYS}, SUM(n), SUM(amount_e5) FROM c "
        f"GROUP BY {KEYS} HAVING SUM(n) <> 0 OR SUM(amount_e5) <> 0"
    )
    daily = (
        f"INSERT INTO stats_rollup_daily ({KEYS}, n, amount_e5) "
        f"SELECT {d.day.format(x='hour')}, metric, code, ebp_code, '', trade_mode, port_code, SUM(n), SUM(amount_e5) "
        f"FROM stats_rollup GROUP BY {d.day.format(x='hour')}, metric, code, ebp_code, trade_mode, port_code "
        "HAVING SUM(n) <> 0 OR SUM(amount_e5) <> 0"
    )
    return hourly, daily


async def rebuild_in_sql(session: AsyncSession) -> int:
    """Fill the (emptied) rollup tables from the records; returns the number of hourly cells."""
    for statement in rebuild_statements(session.get_bind().dialect.name):
        await session.execute(text(statement))
    return int(await session.scalar(text("SELECT count(*) FROM stats_rollup")) or 0)
