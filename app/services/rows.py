"""The match stage's documents and records as plain rows, read and written with Core statements.

A micro-batch of hundreds of documents touches about as many documents and records. As ORM entities, each
attribute read and write went through SQLAlchemy's instrumentation, and the flush sorted, diffed and
registered every object (with the identity map's weak references): about a third of the stage's CPU
(docs/performance.md, "Match stage CPU"). Here a row is a slotted dataclass with the table's columns; the
stage notes what each loaded row held, and ``write_rows`` sends the new rows as one multi-row INSERT per
table (COPY on PostgreSQL: app/services/bulk_insert.py) and the changed ones as one executemany UPDATE per set
of changed columns.

The ORM classes stay the schema and the API's read side; these rows live only inside one round.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import Select, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Base, Document, MatchRecord
from app.services.bulk_insert import insert_rows


@dataclass(slots=True, eq=False)
class DocumentRow:
    """A ``document`` row (app/models/document.py); the fields are the table's columns, in its order."""

    id: uuid.UUID
    doc_type: str
    owner_code: str
    business_no: str
    order_no: str
    ebp_code: str | None
    state: str
    version: int
    app_type: str
    guid: str
    app_time: str
    content_sha256: str
    payload: dict[str, Any]
    sender_code: str
    raw_message_id: uuid.UUID
    record_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    # What the row held when loaded (None: new in this round, to be inserted).
    loaded: tuple[Any, ...] | None = field(default=None, repr=False)


@dataclass(slots=True, eq=False)
class RecordRow:
    """A ``match_record`` row (app/models/match_record.py); the fields are the table's columns, in its order."""

    id: uuid.UUID
    ebp_code: str
    order_no: str
    ebc_code: str | None
    buyer_id_number: str | None
    status: str
    missing: list[Any]
    discrepancies: list[Any]
    matched_at: datetime | None
    agencies: dict[str, Any]
    rejection: dict[str, Any] | None
    documents_first_at: datetime | None
    documents_last_at: datetime | None
    customs_accepted_at: datetime | None
    settled_at: datetime | None
    tax_total: Decimal | None
    trade_mode: str | None
    port_code: str | None
    created_at: datetime
    updated_at: datetime
    loaded: tuple[Any, ...] | None = field(default=None, repr=False)


Row = TypeVar("Row", DocumentRow, RecordRow)


def _columns(row_type: type[DocumentRow | RecordRow]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type) if f.name != "loaded")


DOCUMENT_COLUMNS = _columns(DocumentRow)
RECORD_COLUMNS = _columns(RecordRow)
TABLES: dict[type[DocumentRow | RecordRow], tuple[Table, tuple[str, ...]]] = {
    DocumentRow: (Base.metadata.tables[Document.__tablename__], DOCUMENT_COLUMNS),
    RecordRow: (Base.metadata.tables[MatchRecord.__tablename__], RECORD_COLUMNS),
}


def select_rows(row_type: type[Row]) -> Select[Any]:
    """A select of the table's columns in the row's field order (``load_rows`` builds rows from it)."""
    table, columns = TABLES[row_type]
    return select(*(table.c[name] for name in columns))


async def load_rows(session: AsyncSession, row_type: type[Row], query: Select[Any]) -> list[Row]:
    """The rows of ``query`` (built on ``select_rows``), each noting what it held."""
    rows = []
    for values in await session.execute(query):
        row = row_type(*values)
        row.loaded = tuple(values)
        rows.append(row)
    return rows


# The row's column values as a tuple, in one C call (a generator of getattr calls showed in the profile).
VALUES_OF = {row_type: attrgetter(*columns) for row_type, (_, columns) in TABLES.items()}


async def write_rows(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Insert the new rows (one multi-row statement) and update the changed ones by primary key (one
    executemany per set of changed columns; Core applies the column's ``onupdate`` to ``updated_at`` unless
    the round set it, as the ORM did). All of ``rows`` are of one type."""
    if not rows:
        return
    table, columns = TABLES[type(rows[0])]
    values_of = VALUES_OF[type(rows[0])]
    new: list[dict[str, Any]] = []
    changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        values = values_of(row)
        if row.loaded is None:
            new.append(dict(zip(columns, values, strict=True)))
            continue
        diff = {name: value for name, value, was in zip(columns, values, row.loaded, strict=True) if value != was}
        if not diff:
            continue
        changed.setdefault(tuple(sorted(diff)), []).append({"row_id": row.id, **diff})
    await insert_rows(session, table, new)
    by_id = update(table).where(table.c.id == bindparam("row_id"))  # SET: the other keys of each parameter set
    for params in changed.values():
        await session.execute(by_id, params)
