"""The match stage's plain rows (app/services/rows.py): they carry every column of their table, new rows are
inserted, changed rows update exactly their changed columns (and ``updated_at``), unchanged rows are left alone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event, select

from app.db import utcnow
from app.models import Base, Declaration, Document, MatchRecord
from app.services.bulk_insert import insert_rows
from app.services.rows import DocumentRow, RecordRow, load_rows, select_rows, write_rows


def test_rows_carry_every_column_of_their_table() -> None:
    # A column added to the model but not to the row would be left out of every insert the match stage makes.
    assert [f for f in RecordRow.__dataclass_fields__ if f != "loaded"] == [c.name for c in MatchRecord.__table__.c]
    assert [f for f in DocumentRow.__dataclass_fields__ if f != "loaded"] == [c.name for c in Document.__table__.c]


def _record(order_no: str, **values: Any) -> RecordRow:
    then = utcnow() - timedelta(hours=1)
    fields: dict[str, Any] = dict.fromkeys(RecordRow.__dataclass_fields__)
    fields.pop("loaded")
    fields |= {
        "id": uuid.uuid4(),
        "ebp_code": "EBP1",
        "order_no": order_no,
        "status": "AWAITING_DOCUMENTS",
        "missing": ["payment"],
        "discrepancies": [],
        "agencies": {},
        "created_at": then,
        "updated_at": then,
    }
    return RecordRow(**(fields | values))


async def test_write_rows_inserts_new_rows_and_updates_only_what_changed(app: FastAPI) -> None:
    sessionmaker = app.state.sessionmaker
    kept, changed = _record("ROWS-1"), _record("ROWS-2")
    async with sessionmaker() as session, session.begin():
        await write_rows(session, [kept, changed])
    async with sessionmaker() as session, session.begin():
        query = select_rows(RecordRow).where(MatchRecord.order_no.in_(["ROWS-1", "ROWS-2"]))
        loaded = {row.order_no: row for row in await load_rows(session, RecordRow, query)}
        assert loaded["ROWS-1"].missing == ["payment"]
        assert loaded["ROWS-1"].loaded is not None
        loaded["ROWS-2"].status, loaded["ROWS-2"].missing = "MISMATCHED", []
        await write_rows(session, list(loaded.values()))
    async with sessionmaker() as session:
        rows = {r.order_no: r for r in await session.scalars(select(MatchRecord).where(MatchRecord.ebp_code == "EBP1"))}
    assert rows["ROWS-1"].status == "AWAITING_DOCUMENTS"
    assert rows["ROWS-1"].updated_at == kept.updated_at  # unchanged: not written
    assert (rows["ROWS-2"].status, rows["ROWS-2"].missing) == ("MISMATCHED", [])
    assert rows["ROWS-2"].updated_at > changed.updated_at  # the ORM's onupdate, kept
    assert rows["ROWS-2"].created_at == changed.created_at


async def test_insert_rows_writes_what_a_core_insert_would(app: FastAPI, is_postgres: bool) -> None:
    """On PostgreSQL through COPY (no INSERT statement is sent), on SQLite through Core: the same values read
    back, the Python-side defaults of left-out columns applied (``created_at``), JSON None kept as JSON."""
    engine, sessionmaker = app.state.engine, app.state.sessionmaker
    record = _record("ROWS-COPY", rejection=None, tax_total=Decimal("12.30000"))
    table = Base.metadata.tables["declaration"]
    declaration = {
        "record_id": record.id,
        "inventory": {"head": {"copNo": "中文"}},
        "tax": {"taxTotal": "12.3"},
        "dutiable_value": Decimal("100.00000"),
        "buyer_id_number": "X",
        "decl_year": 2026,
        "counts_to_quota": True,
        "rejection": None,
        "risk": None,
    }
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(select(1))  # COPY joins a transaction that has begun
            await write_rows(session, [record])
            await insert_rows(session, table, [declaration])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert (inserts == []) is is_postgres
    async with sessionmaker() as session:
        stored = await session.get(MatchRecord, record.id)
        decl = await session.get(Declaration, record.id)
        json_null = await session.scalar(select(table.c.rejection.is_(None)).where(table.c.record_id == record.id))
    assert stored is not None
    assert decl is not None
    assert (stored.tax_total, stored.created_at, stored.missing) == (Decimal("12.3"), record.created_at, ["payment"])
    assert (decl.inventory, decl.dutiable_value, decl.returned_value) == (
        {"head": {"copNo": "中文"}},
        Decimal(100),
        Decimal(0),
    )
    assert decl.created_at > record.created_at  # utcnow, the column's default
    assert decl.rejection is None
    assert json_null is False  # JSON null, as SQLAlchemy's INSERT stores a None of a JSON column
