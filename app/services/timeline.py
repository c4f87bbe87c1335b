"""The append-only audit trail: events with a record id form that record's timeline."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import RecordEvent


def add_event(
    session: AsyncSession,
    kind: str,
    actor: str,
    *,
    record_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        RecordEvent(
            record_id=record_id,
            document_id=document_id,
            kind=kind,
            actor=actor,
            at=utcnow(),
            detail=detail or {},
        )
    )
