"""Operations: the match stage's dead submissions, the outbox and its dead letters (admins act; officials read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from app.deps import PrincipalDep, SessionDep
from app.models import Submission
from app.schemas.documents import key_dict
from app.schemas.problems import problems
from app.services import audit, operations, submissions

# ``submission.seq`` is a PostgreSQL bigint: a larger number cannot name a submission (and asyncpg refuses to
# send it: a 500 before this bound).
MAX_SEQ = 2**63 - 1
router = APIRouter(prefix="/api/v1", tags=["Operations (dead submissions, outbox, 重推)"])

DispatchStatus = Literal["pending", "in_flight", "delivered", "retry", "dead"]


class AttemptOut(BaseModel):
    attempt: int
    startedAt: datetime
    finishedAt: datetime
    outcome: str
    httpStatus: int | None
    error: str | None


class DispatchOut(BaseModel):
    id: uuid.UUID
    recordId: uuid.UUID
    agency: str
    status: DispatchStatus
    attempts: int
    nextAttemptAt: datetime
    leaseUntil: datetime | None
    lastError: str | None
    deliveredAt: datetime | None
    createdAt: datetime
    updatedAt: datetime
    history: list[AttemptOut]


class DispatchList(BaseModel):
    items: list[DispatchOut]


@router.get(
    "/admin/dispatches",
    response_model=DispatchList,
    summary="Dispatches to the agencies, e.g. the dead letters (?status=dead) or one record's (?recordId=)",
    responses=problems(401, 403, 422, 503),
    operation_id="list_dispatches",
)
async def list_dispatches(
    session: SessionDep,
    principal: PrincipalDep,
    status: DispatchStatus | None = None,
    recordId: uuid.UUID | None = None,
    agency: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DispatchList:
    principal.require_reader()
    rows = await operations.list_dispatches(session, status, recordId, agency, limit)
    return DispatchList(items=[DispatchOut.model_validate(operations.dispatch_view(d, a)) for d, a in rows])


@router.post(
    "/admin/dispatches/{dispatch_id}/retry",
    response_model=DispatchOut,
    summary="Send one dispatch again now (a dead letter, or one waiting for its retry)",
    responses=problems(401, 403, 404, 409, 503),
    operation_id="retry_dispatch",
)
async def retry_dispatch(dispatch_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> DispatchOut:
    principal.require_admin()
    before = DispatchOut.model_validate(
        operations.dispatch_view(await operations.get_dispatch(session, dispatch_id), [])
    )
    dispatch = await operations.retry_dispatch(session, dispatch_id, principal.actor)
    after = DispatchOut.model_validate(operations.dispatch_view(dispatch, []))
    action = "dead_letter.retried" if before.status == "dead" else "dispatch.retried"
    await audit.record_act(session, principal, action, "dispatch", dispatch_id, before=before, after=after)
    return after


@router.post(
    "/records/{record_id}/redispatch",
    response_model=DispatchList,
    summary="Re-push (重推) the record's dead dispatches to their agencies",
    responses=problems(401, 403, 404, 409, 503),
    operation_id="redispatch_record",
)
async def redispatch_record(record_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> DispatchList:
    principal.require_admin()
    dispatches = await operations.redispatch_record(session, record_id, principal.actor)
    after = DispatchList(items=[DispatchOut.model_validate(operations.dispatch_view(d, [])) for d in dispatches])
    # Only dead dispatches are re-pushed: before, each of them was what it is now, but dead.
    before = {"items": [item.model_dump(mode="json") | {"status": "dead"} for item in after.items]}
    await audit.record_act(
        session, principal, "record.redispatched", "match_record", record_id, before=before, after=after
    )
    return after


SubmissionState = Literal["pending", "done", "dead"]


class SubmissionOut(BaseModel):
    seq: int
    documentType: str
    key: dict[str, str]
    orderNo: str
    appType: str
    senderCode: str
    rawMessageId: uuid.UUID
    acceptedAt: datetime
    state: SubmissionState
    attempts: int
    processedAt: datetime | None
    outcome: str | None
    error: str | None = Field(description="Why a dead submission could not be processed")


class SubmissionList(BaseModel):
    items: list[SubmissionOut]
    nextAfter: int | None = Field(description="Pass as `after` for the next page; null at the end")


def _submission_out(row: Submission) -> SubmissionOut:
    return SubmissionOut(
        seq=row.seq,
        documentType=row.doc_type,
        key=key_dict(row.doc_type, row.owner_code, row.business_no),
        orderNo=row.order_no,
        appType=row.app_type,
        senderCode=row.sender_code,
        rawMessageId=row.raw_message_id,
        acceptedAt=row.accepted_at,
        state=row.state,
        attempts=row.attempts,
        processedAt=row.processed_at,
        outcome=row.outcome,
        error=row.error,
    )


@router.get(
    "/admin/submissions",
    response_model=SubmissionList,
    summary="Accepted documents in the match stage, e.g. the dead ones (?state=dead) with why they failed",
    responses=problems(401, 403, 422, 503),
    operation_id="list_submissions",
)
async def list_submissions(
    session: SessionDep,
    principal: PrincipalDep,
    state: SubmissionState | None = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="Only submissions after this seq")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubmissionList:
    principal.require_reader()
    rows = await submissions.list_submissions(session, state, after, limit)
    return SubmissionList(
        items=[_submission_out(row) for row in rows], nextAfter=rows[-1].seq if len(rows) == limit else None
    )


@router.post(
    "/admin/submissions/{seq}/retry",
    response_model=SubmissionOut,
    summary="Put a dead submission back in the match stage's queue (after the cause is fixed)",
    responses=problems(401, 403, 404, 409, 503),
    operation_id="retry_submission",
)
async def retry_submission(
    seq: Annotated[int, Path(ge=1, le=MAX_SEQ)], session: SessionDep, principal: PrincipalDep
) -> SubmissionOut:
    principal.require_admin()
    # The matchers find it at their next look (``match_poll_s``), after this transaction commits.
    before = _submission_out(await submissions.get_submission(session, seq))
    after = _submission_out(await submissions.retry_submission(session, seq, principal.actor))
    await audit.record_act(session, principal, "submission.retried", "submission", seq, before=before, after=after)
    return after
