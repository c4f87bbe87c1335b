"""The match stage's dead submissions: listed for admins and officials, sent round again by an admin."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, NotFound
from app.models import Submission
from app.services.timeline import add_event


async def list_submissions(session: AsyncSession, state: str | None, after: int | None, limit: int) -> list[Submission]:
    query = select(Submission).order_by(Submission.seq).limit(limit)
    if state is not None:
        query = query.where(Submission.state == state)
    if after is not None:
        query = query.where(Submission.seq > after)
    return list(await session.scalars(query))


async def get_submission(session: AsyncSession, seq: int) -> Submission:
    """The submission, locked for the rest of the transaction."""
    row = await session.get(Submission, seq, with_for_update=True)
    if row is None:
        raise NotFound(f"No submission {seq}", code="SUBMISSION_NOT_FOUND")
    return row


async def retry_submission(session: AsyncSession, seq: int, actor: str) -> Submission:
    """A dead submission back in the match stage's queue, at its original place in the order."""
    row = await get_submission(session, seq)
    if row.state != "dead":
        raise Conflict(f"Submission {seq} is {row.state}; only dead ones are retried", code="SUBMISSION_NOT_DEAD")
    add_event(
        session,
        "submission_retried",
        actor,
        detail={"seq": seq, "error": row.error, "documentType": row.doc_type, "at": utcnow().isoformat()},
    )
    row.state, row.processed_at = "pending", None
    return row
