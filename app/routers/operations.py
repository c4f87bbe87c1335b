"""Operations: the outbox and its dead letters (admins act; officials read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.deps import PrincipalDep, SessionDep
from app.errors import Forbidden
from app.schemas.problems import problems
from app.services import operations

router = APIRouter(prefix="/api/v1", tags=["Operations (outbox, 重推)"])

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


def _reader(principal: Any) -> None:
    if not principal.reads_everything:
        raise Forbidden("Admins and officials only", code="ADMIN_REQUIRED")


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
    _reader(principal)
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
    dispatch = await operations.retry_dispatch(session, dispatch_id, principal.actor)
    return DispatchOut.model_validate(operations.dispatch_view(dispatch, []))


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
    return DispatchList(items=[DispatchOut.model_validate(operations.dispatch_view(d, [])) for d in dispatches])
