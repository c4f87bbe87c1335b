"""Public endpoints (no key): credit disclosure, complaints (投诉举报), a buyer's own quota check; and the
officials' complaint triage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.errors import RateLimited
from app.models import Complaint
from app.rules.risk import subject_key
from app.schemas.problems import problems
from app.schemas.public import (
    ComplaintFiled,
    ComplaintIn,
    ComplaintOut,
    ComplaintPage,
    ComplaintStatus,
    ComplaintTriage,
    PublicEnterprise,
    QuotaCheckIn,
    QuotaCheckOut,
)
from app.services import public as service
from app.services.credit import require_supervisor
from app.services.rate_limits import RateLimiter, refusal

router = APIRouter(prefix="/api/v1", tags=["Public services (公共服务)"])
HOUR_S, DAY_S = 3600, 86400


async def _within_limit(request: Request, bucket: str, limit: int, window_s: int, what: str) -> None:
    """Count one request in the shared limiter (Redis with SW_REDIS_URL: one budget across the API processes);
    a limit of 0 means none, as for the enterprises' limits."""
    limiter: RateLimiter = request.app.state.rate_limiter
    verdict = await refusal(limiter, f"public:{bucket}", limit, window_s)
    if verdict is not None:
        raise RateLimited(
            f"More than {limit} {what} in {window_s // 3600} h; try again later", retry_after_s=verdict.retry_after_s
        )


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _complaint(c: Complaint) -> ComplaintOut:
    return ComplaintOut(
        id=c.id,
        status=c.status,
        createdAt=c.created_at,
        kind=c.kind,
        enterpriseCode=c.enterprise_code,
        report=c.report,
        recordIds=c.record_ids,
        note=c.note,
        handledBy=c.handled_by,
        updatedAt=c.updated_at,
    )


@router.get(
    "/public/enterprises/{code}",
    response_model=PublicEnterprise,
    summary="Credit disclosure of an enterprise: six categories, aggregated by month (no key)",
    description="主体信息, 经营信息 (orders and value by month, value rounded to 1,000 CNY; a month with fewer "
    "than 5 buyers is null), 监管信息 (the customs credit level), 服务信息, 奖惩信息, 投诉举报信息. No personal data.",
    responses=problems(404, 503),
    operation_id="public_enterprise",
)
async def public_enterprise(code: str, session: SessionDep, settings: SettingsDep) -> PublicEnterprise:
    return await service.public_enterprise(session, settings, code)


@router.post(
    "/public/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintFiled,
    summary="File a complaint or report (投诉举报), e.g. a stolen identity (no key; rate-limited)",
    responses=problems(400, 413, 422, 429, 503),
    operation_id="file_complaint",
)
async def file_complaint(
    data: ComplaintIn, request: Request, session: SessionDep, settings: SettingsDep
) -> ComplaintFiled:
    client = _client(request)
    await _within_limit(request, f"complaints:{client}", settings.public_complaints_per_hour, HOUR_S, "complaints")
    complaint = await service.file_complaint(session, data)
    return ComplaintFiled(id=complaint.id, status="received", createdAt=complaint.created_at)


@router.post(
    "/public/quota-check",
    response_model=QuotaCheckOut,
    summary="A buyer's own annual quota and declarations (ID number + name + telephone; no key; rate-limited)",
    description="All three must match a stored purchase (else `404`, the same for every miss). Answers the year's "
    "quota used and each declaration masked — how a person notices purchases they never made. Limited per "
    "client and per ID number (`429 RATE_LIMITED`).",
    responses=problems(400, 404, 413, 422, 429, 503),
    operation_id="quota_check",
)
async def quota_check(
    data: QuotaCheckIn, request: Request, session: SessionDep, settings: SettingsDep
) -> QuotaCheckOut:
    client = _client(request)
    await _within_limit(request, f"quota-client:{client}", settings.public_quota_checks_per_hour, HOUR_S, "checks")
    # The ID number only as a keyed hash: the limiter's keys (in Redis) must not hold ID numbers, nor hashes
    # anyone could compute from them.
    secret = settings.risk_id_secret.get_secret_value().encode()
    id_key = subject_key(secret, "quota-check", data.idNumber.strip().upper())
    await _within_limit(
        request, f"quota-id:{id_key}", settings.public_quota_checks_per_id_day, DAY_S, "checks of this ID number"
    )
    return await service.quota_check(session, settings, data)


@router.get(
    "/complaints",
    response_model=ComplaintPage,
    summary="Complaints to triage, oldest first (officials, admins)",
    responses=problems(401, 403, 422, 503),
    operation_id="list_complaints",
)
async def list_complaints(
    session: SessionDep,
    principal: PrincipalDep,
    status: ComplaintStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ComplaintPage:
    require_supervisor(principal)
    rows, next_cursor = await service.list_complaints(session, status, cursor, limit)
    return ComplaintPage(items=[_complaint(c) for c in rows], nextCursor=next_cursor)


@router.post(
    "/complaints/{complaint_id}/triage",
    response_model=ComplaintOut,
    summary="Triage a complaint: investigating, upheld or rejected; link it to records and an enterprise",
    description="An upheld complaint counts against the enterprise's local score. Linked records show it on "
    "their timeline (`complaint_linked`).",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="triage_complaint",
)
async def triage_complaint(
    complaint_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    data: ComplaintTriage,
    session: SessionDep,
    principal: PrincipalDep,
) -> ComplaintOut:
    require_supervisor(principal)
    return _complaint(await service.triage_complaint(session, principal, complaint_id, data))
