"""Risk warnings (风险预警): the officials' queue, and an enterprise's credit, local score and warnings."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.models import RiskWarning
from app.rules.credit import WATCH_BELOW, CreditLevel
from app.schemas.problems import problems
from app.schemas.risk import EnterpriseRisk, WarningAction, WarningHandling, WarningOut, WarningPage, WarningStatus
from app.services import warnings as service
from app.services.credit import require_supervisor

router = APIRouter(prefix="/api/v1", tags=["Credit and risk (信用与风险)"])


def warning_out(w: RiskWarning) -> WarningOut:
    return WarningOut(
        id=w.id,
        recordId=w.record_id,
        rule=w.rule,
        ebpCode=w.ebp_code,
        ebcCode=w.ebc_code,
        logisticsCode=w.logistics_code,
        detail=w.detail,
        status=w.status,
        note=w.note,
        handledBy=w.handled_by,
        createdAt=w.created_at,
        updatedAt=w.updated_at,
    )


@router.get(
    "/risk/warnings",
    response_model=WarningPage,
    summary="The warning queue, oldest first (officials, admins)",
    description="Filters: `status`, `rule`, `enterpriseCode` (as platform, seller or carrier), `recordId`. "
    "Resumable with `cursor`.",
    responses=problems(401, 403, 422, 503),
    operation_id="list_risk_warnings",
)
async def list_warnings(
    session: SessionDep,
    principal: PrincipalDep,
    status: WarningStatus | None = None,
    rule: Annotated[str | None, Query(pattern=r"^R[1-8]$")] = None,
    enterpriseCode: Annotated[str | None, Query(max_length=18)] = None,
    recordId: uuid.UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WarningPage:
    require_supervisor(principal)
    found = service.WarningFilter(status, rule, enterpriseCode, recordId)
    rows, next_cursor = await service.list_warnings(session, found, cursor, limit)
    return WarningPage(items=[warning_out(w) for w in rows], nextCursor=next_cursor)


@router.post(
    "/risk/warnings/{warning_id}/{action}",
    response_model=WarningOut,
    summary="Acknowledge, dismiss or escalate a warning, with a note (officials, admins; on the record's timeline)",
    description="open → acknowledged → dismissed | escalated (or straight from open). Dismissed and escalated "
    "are final: `409 WARNING_ALREADY_HANDLED`.",
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    operation_id="handle_risk_warning",
)
async def handle_warning(
    warning_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    action: WarningAction,
    data: WarningHandling,
    session: SessionDep,
    principal: PrincipalDep,
) -> WarningOut:
    require_supervisor(principal)
    return warning_out(await service.handle_warning(session, principal, warning_id, action, data.note))


@router.get(
    "/enterprises/{code}/risk",
    response_model=EnterpriseRisk,
    summary="An enterprise's credit level, local score and warnings (officials, admins)",
    responses=problems(401, 403, 404, 503),
    operation_id="get_enterprise_risk",
)
async def enterprise_risk(
    code: str, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> EnterpriseRisk:
    require_supervisor(principal)
    view = await service.enterprise_risk(session, code, settings)
    record = view.record
    return EnterpriseRisk(
        enterpriseCode=view.enterprise.code,
        creditLevel=CreditLevel(view.enterprise.credit_level),
        localScore=view.score,
        watchList=view.score < WATCH_BELOW or view.rejection_outlier,
        records=record.records,
        mismatchRate=round(record.mismatch_rate, 4),
        rejectionRate=round(record.rejection_rate, 4),
        peerMismatchMedian=round(record.peer_mismatch_median, 4),
        peerRejectionMedian=round(record.peer_rejection_median, 4),
        recentRejectionRate=round(view.recent_rejection_rate, 4),
        peerRecentRejectionMedian=round(view.peer_recent_rejection_median, 4),
        r8RejectionOutlier=view.rejection_outlier,
        openWarnings=view.open_by_rule,
        recentWarnings=[warning_out(w) for w in view.recent],
    )
