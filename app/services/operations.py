"""Operations on the outbox: list dispatches, retry one, re-push a record (重推)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, NotFound
from app.models import Dispatch, DispatchAttempt, MatchRecord
from app.services.declaration import notify_dispatchers
from app.services.receipts import mark_dispatch_state
from app.services.timeline import add_event

REQUEUEABLE = ("dead", "retry", "pending")


async def list_dispatches(
    session: AsyncSession, status: str | None, record_id: uuid.UUID | None, agency: str | None, limit: int
) -> list[tuple[Dispatch, list[DispatchAttempt]]]:
    query = select(Dispatch).order_by(Dispatch.updated_at.desc(), Dispatch.id).limit(limit)
    if status is not None:
        query = query.where(Dispatch.status == status)
    if record_id is not None:
        query = query.where(Dispatch.record_id == record_id)
    if agency is not None:
        query = query.where(Dispatch.agency == agency)
    dispatches = list(await session.scalars(query))
    attempts: dict[uuid.UUID, list[DispatchAttempt]] = {d.id: [] for d in dispatches}
    if dispatches:
        rows = await session.scalars(
            select(DispatchAttempt)
            .where(DispatchAttempt.dispatch_id.in_(list(attempts)))
            .order_by(DispatchAttempt.attempt_no)
        )
        for attempt in rows:
            attempts[attempt.dispatch_id].append(attempt)
    return [(d, attempts[d.id]) for d in dispatches]


async def requeue(session: AsyncSession, dispatch: Dispatch, actor: str) -> None:
    if dispatch.status not in REQUEUEABLE:
        raise Conflict(
            f"Dispatch {dispatch.id} is {dispatch.status}; only dead or waiting ones are re-pushed",
            code="DISPATCH_NOT_REQUEUEABLE",
        )
    now = utcnow()
    dispatch.status, dispatch.next_attempt_at, dispatch.updated_at = "pending", now, now
    record = await session.get(MatchRecord, dispatch.record_id, with_for_update=True)
    if record is not None:
        mark_dispatch_state(record, dispatch.agency, "pending")
        add_event(
            session,
            "dispatch_requeued",
            actor,
            record_id=record.id,
            detail={"agency": dispatch.agency, "dispatchId": str(dispatch.id)},
        )
    await notify_dispatchers(session)


async def get_dispatch(session: AsyncSession, dispatch_id: uuid.UUID) -> Dispatch:
    """The dispatch, locked for the rest of the transaction."""
    dispatch = await session.get(Dispatch, dispatch_id, with_for_update=True)
    if dispatch is None:
        raise NotFound(f"No dispatch {dispatch_id}", code="DISPATCH_NOT_FOUND")
    return dispatch


async def retry_dispatch(session: AsyncSession, dispatch_id: uuid.UUID, actor: str) -> Dispatch:
    dispatch = await get_dispatch(session, dispatch_id)
    await requeue(session, dispatch, actor)
    return dispatch


async def redispatch_record(session: AsyncSession, record_id: uuid.UUID, actor: str) -> list[Dispatch]:
    """Re-push every dead dispatch of the record (the ones delivered are not sent again)."""
    record = await session.get(MatchRecord, record_id)
    if record is None:
        raise NotFound(f"No record {record_id}", code="RECORD_NOT_FOUND")
    dead = list(
        await session.scalars(
            select(Dispatch).where(Dispatch.record_id == record_id, Dispatch.status == "dead").with_for_update()
        )
    )
    if not dead:
        raise Conflict("The record has no dead dispatch to re-push", code="NOTHING_TO_REDISPATCH")
    for dispatch in dead:
        await requeue(session, dispatch, actor)
    return dead


def dispatch_view(dispatch: Dispatch, attempts: list[DispatchAttempt]) -> dict[str, Any]:
    return {
        "id": dispatch.id,
        "recordId": dispatch.record_id,
        "agency": dispatch.agency,
        "status": dispatch.status,
        "attempts": dispatch.attempts,
        "nextAttemptAt": dispatch.next_attempt_at,
        "leaseUntil": dispatch.lease_until,
        "lastError": dispatch.last_error,
        "deliveredAt": dispatch.delivered_at,
        "createdAt": dispatch.created_at,
        "updatedAt": dispatch.updated_at,
        "history": [
            {
                "attempt": a.attempt_no,
                "startedAt": a.started_at,
                "finishedAt": a.finished_at,
                "outcome": a.outcome,
                "httpStatus": a.http_status,
                "error": a.error,
            }
            for a in attempts
        ],
    }
