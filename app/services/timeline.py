"""The append-only audit trail: events with a record id form that record's timeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import RecordEvent, table_of


def event_row(
    kind: str,
    actor: str,
    *,
    record_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event's columns, for the writers that insert many with Core (the match stage, the dispatcher)."""
    return {
        "record_id": record_id,
        "document_id": document_id,
        "kind": kind,
        "actor": actor,
        "at": utcnow(),
        "detail": detail or {},
    }


def add_event(
    session: AsyncSession,
    kind: str,
    actor: str,
    *,
    record_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(RecordEvent(**event_row(kind, actor, record_id=record_id, document_id=document_id, detail=detail)))


@dataclass
class EventRows:
    """Events gathered over a unit of work that writes many (the dispatcher's round of outcomes) and written
    with one multi-row insert: an ORM object per event cost more CPU than the rest of recording an outcome.
    ``write`` before the transaction commits; the events keep the order they were added in."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        kind: str,
        actor: str,
        *,
        record_id: uuid.UUID | None = None,
        document_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.rows.append(event_row(kind, actor, record_id=record_id, document_id=document_id, detail=detail))

    async def write(self, session: AsyncSession) -> None:
        rows, self.rows = self.rows, []
        if rows:
            await session.execute(insert(table_of(RecordEvent)), rows)  # Core: no ORM bulk-insert bookkeeping
