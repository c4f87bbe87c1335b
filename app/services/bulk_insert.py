"""Many new rows into one table: PostgreSQL's COPY on the transaction's own asyncpg connection, else a Core
multi-row INSERT.

A micro-batch of 1,000 documents writes about ten thousand rows (events, documents, records, declarations,
outbox). As an executemany INSERT, SQLAlchemy builds a parameter dictionary per row and PostgreSQL parses
and plans multi-row VALUES statements; COPY sends the rows as binary tuples in one stream
(docs/performance.md, "Match stage CPU"). Values go through each column type's own bind processor, as
SQLAlchemy would send them (JSON as text: the asyncpg dialect's jsonb codec takes text), and the Python-side
defaults of the columns a row leaves out are applied here; database defaults (``record_event.id``, ``tx``)
are COPY's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from sqlalchemy import Column, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.accept_pg import unavailable


def _default(column: Column[Any]) -> Callable[[], Any] | None:
    """The column's Python-side default as a function of nothing, or None (no default, or the database's)."""
    default = column.default
    if default is None or not (default.is_scalar or default.is_callable):
        return None
    arg = default.arg  # type: ignore[attr-defined]
    if default.is_scalar:
        return lambda: arg
    return lambda: arg(None)  # SQLAlchemy wraps a callable default to take the execution context


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dictionaries with the same keys) into ``table`` in this session's transaction."""
    if not rows:
        return
    connection = await session.connection()
    dialect = connection.dialect
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if dialect.name != "postgresql" or not isinstance(driver, asyncpg.Connection) or not driver.is_in_transaction():
        await session.execute(insert(table), rows)
        return
    names = list(rows[0])
    given = [table.c[name] for name in names]
    defaults = [(c.name, f) for c in table.c if c.name not in rows[0] and (f := _default(c)) is not None]
    columns = [*names, *(name for name, _ in defaults)]
    processors = [c.type._cached_bind_processor(dialect) for c in given]
    processors += [table.c[name].type._cached_bind_processor(dialect) for name, _ in defaults]
    records = []
    for row in rows:
        values = [row[name] for name in names] + [make() for _, make in defaults]
        # None goes through the processor too: a JSON column's None is JSON null, as in SQLAlchemy's INSERT.
        records.append(tuple(v if p is None else p(v) for p, v in zip(processors, values, strict=True)))
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
    except Exception as exc:
        if unavailable(exc):  # as an outage, like SQLAlchemy's own statements: the connection is not reused
            await connection.invalidate()
            raise ConnectionError(f"the database connection broke during COPY: {exc!r}") from exc
        raise
