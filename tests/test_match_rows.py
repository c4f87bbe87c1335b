"""The match stage's plain rows (app/services/rows.py): they carry every column of their table, new rows are
inserted, changed rows update exactly their changed columns (and ``updated_at``), unchanged rows are left alone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from app.db import utcnow
from app.models import Document, MatchRecord
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
