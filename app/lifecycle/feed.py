"""The ordered feed: every receipt and status change of every record, readable from a cursor.

The feed is the ``record_event`` table read in position order. A position is (transaction id, event id) on
PostgreSQL: ids are handed out when rows are inserted, not when they commit, so reading by id alone could
pass over an event whose transaction commits late. A reader therefore takes only events of transactions
older than every transaction still running (``pg_snapshot_xmin``): those can no longer change, and their
order by (tx, id) is final. On SQLite one writer runs at a time, ``tx`` is 0 and ids are in commit order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unprocessable
from app.models import RecordEvent

# What the feed carries: every document's business receipt (120 / 100), every status change of a record, the
# agencies' receipts, the declare stage's refusals and the dispatches that went dead.
FEED_KINDS = ("document_receipt", "status_changed", "agency_receipt", "declaration_rejected", "dispatch_dead")


@dataclass(frozen=True, order=True)
class FeedPosition:
    tx: int
    id: int

    def cursor(self) -> str:
        return f"{self.tx}.{self.id}"

    @classmethod
    def parse(cls, cursor: str) -> FeedPosition:
        tx, _, event_id = cursor.partition(".")
        if not (tx.isdigit() and event_id.isdigit()) or len(cursor) > 41:
            raise Unprocessable(
                "A feed cursor is the nextCursor of an earlier page",
                code="INVALID_CURSOR",
                errors=[{"path": "after", "message": "not a feed cursor", "type": "cursor"}],
            )
        return cls(int(tx), int(event_id))


START = FeedPosition(0, 0)


@dataclass(frozen=True)
class FeedEvent:
    position: FeedPosition
    kind: str
    record_id: uuid.UUID | None
    document_id: uuid.UUID | None
    actor: str
    at: datetime
    detail: dict[str, Any]


def _shown_now(session: AsyncSession) -> tuple[ColumnElement[bool], ...]:
    """The condition keeping a query to the events the feed shows now (the rule in this module's docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        return (RecordEvent.tx < text("(pg_snapshot_xmin(pg_current_snapshot())::text)::bigint"),)
    return ()


async def read_feed(
    session: AsyncSession, after: FeedPosition, limit: int, *, only: ColumnElement[bool] | None = None
) -> list[FeedEvent]:
    """Up to ``limit`` feed events after ``after``, in feed order; with ``only``, those that match it."""
    query = (
        select(RecordEvent)
        .where(
            RecordEvent.kind.in_(FEED_KINDS),
            or_(
                RecordEvent.tx > after.tx,
                and_(RecordEvent.tx == after.tx, RecordEvent.id > after.id),
            ),
            *_shown_now(session),
        )
        .order_by(RecordEvent.tx, RecordEvent.id)
        .limit(limit)
    )
    if only is not None:
        query = query.where(only)
    rows = await session.scalars(query)
    return [
        FeedEvent(FeedPosition(row.tx, row.id), row.kind, row.record_id, row.document_id, row.actor, row.at, row.detail)
        for row in rows
    ]


async def feed_head(session: AsyncSession) -> FeedPosition | None:
    """The position of the last event the feed shows now (by the rule ``read_feed`` follows), without reading
    the events: one probe of the position index from its end."""
    query = (
        select(RecordEvent.tx, RecordEvent.id)
        .where(RecordEvent.kind.in_(FEED_KINDS), *_shown_now(session))
        .order_by(RecordEvent.tx.desc(), RecordEvent.id.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return FeedPosition(row.tx, row.id) if row is not None else None


__all__ = ["FEED_KINDS", "START", "FeedEvent", "FeedPosition", "feed_head", "read_feed"]
