"""The audit trail (审计): who did which administrative act, when, and what it changed; raw messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.routers.records import IsoDateTime
from app.schemas.audit import AuditPage, RawMessageOut
from app.schemas.problems import problems
from app.services import audit as service

router = APIRouter(prefix="/api/v1/audit", tags=["Audit (审计)"])


def _with_zone(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-11-23T08:00:00Z")
    return value


# ISO 8601 with a zone: not seconds since 1970, and not a naive time compared with UTC instants.
AuditTime = Annotated[IsoDateTime, AfterValidator(_with_zone)]


@router.get(
    "",
    response_model=AuditPage,
    summary="The audit trail, newest first (admins and officials)",
    description="Every administrative act — filing, keys, officials, delegations, goods records, certificates, "
    "re-pushes and dead-letter retries — with who did it, when, and the target before and after. Filters "
    "combine with AND; `action` ending in `.` matches every action it starts (`key.`). Follow `nextCursor` "
    "for older entries.",
    responses=problems(401, 403, 422, 503),
    operation_id="list_audit_entries",
)
async def list_audit_entries(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    actor: Annotated[str | None, Query(max_length=64, description="Key id, or enterprise code")] = None,
    action: Annotated[str | None, Query(max_length=64, examples=["enterprise.suspended", "key."])] = None,
    targetKind: Annotated[str | None, Query(max_length=32, examples=["enterprise"])] = None,
    targetId: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[AuditTime | None, Query(description="From this time on (inclusive), with its offset")] = None,
    until: Annotated[AuditTime | None, Query(description="Before this time (exclusive), with its offset")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> AuditPage:
    principal.require_reader()
    audit_filter = service.AuditFilter(actor, action, targetKind, targetId, since, until)
    return await service.list_entries(session, audit_filter, min(limit, settings.page_size_max), cursor)


@router.get(
    "/messages/{message_id}",
    response_model=RawMessageOut,
    summary="A message exactly as it was received (admins and officials)",
    description="The raw body of an accepted JSON or CEB XML message (`rawMessageId` of a submission), with "
    "its SHA-256 — what the sender sent, byte for byte.",
    responses=problems(401, 403, 404, 503),
    operation_id="get_raw_message",
)
async def get_raw_message(message_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> RawMessageOut:
    principal.require_reader()
    return await service.raw_message(session, message_id)
