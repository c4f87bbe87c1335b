"""Customs credit levels (信用等级) of enterprises and the supervision profile of each level."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.models import CreditAssessment, Enterprise
from app.rules.credit import LEVEL_NAMES_ZH, CreditLevel
from app.schemas.credit import CreditAssessmentOut, CreditOut, CreditSet, ProfileOut, ProfilesIn, ProfilesOut
from app.schemas.problems import problems
from app.services import credit as service
from app.services.enterprises import get_enterprise

router = APIRouter(prefix="/api/v1", tags=["Credit and risk (信用与风险)"])


def rate(value: Decimal) -> Decimal:
    """0.030000 (PostgreSQL NUMERIC) and 0.03 (SQLite text) are one rate: answered the same on both."""
    return value.normalize() if value else Decimal("0")


def _credit(enterprise: Enterprise, history: list[CreditAssessment]) -> CreditOut:
    level = CreditLevel(enterprise.credit_level)
    return CreditOut(
        enterpriseCode=enterprise.code,
        level=level,
        levelZh=LEVEL_NAMES_ZH[level],
        history=[
            CreditAssessmentOut(
                level=CreditLevel(a.level),
                previousLevel=CreditLevel(a.previous_level),
                basis=a.basis,
                effectiveDate=a.effective_date,
                setBy=a.set_by,
                createdAt=a.created_at,
            )
            for a in history
        ],
    )


@router.put(
    "/enterprises/{code}/credit",
    response_model=CreditOut,
    summary="Set an enterprise's customs credit level, with its basis and date (officials, admins)",
    description="The five levels of GACC Order No. 282. Every change is kept (history) and audited on the feed "
    "(`credit_level_set`). The level decides how its declarations are supervised (`GET /api/v1/risk/profiles`).",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="set_enterprise_credit",
)
async def set_credit(code: str, data: CreditSet, session: SessionDep, principal: PrincipalDep) -> CreditOut:
    service.require_supervisor(principal)
    enterprise = await service.set_credit(session, principal, code, data)
    return _credit(enterprise, await service.credit_history(session, code))


@router.get(
    "/enterprises/{code}/credit",
    response_model=CreditOut,
    summary="An enterprise's customs credit level and its history (officials, admins, the enterprise)",
    responses=problems(401, 403, 404, 503),
    operation_id="get_enterprise_credit",
)
async def get_credit(code: str, session: SessionDep, principal: PrincipalDep) -> CreditOut:
    principal.require_reader_of(code)
    enterprise = await get_enterprise(session, code)
    return _credit(enterprise, await service.credit_history(session, code))


async def _profiles(session: SessionDep, settings: SettingsDep) -> ProfilesOut:
    stored = await service.stored_profiles(session)
    current = await service.current_profiles(session, settings)
    return ProfilesOut(
        profiles=[
            ProfileOut(
                level=level,
                levelZh=LEVEL_NAMES_ZH[level],
                inspectionRate=rate(profile.inspection_rate),
                block=profile.block,
                source="official" if level in stored else "settings",
                updatedBy=stored[level].updated_by if level in stored else None,
                updatedAt=stored[level].updated_at if level in stored else None,
            )
            for level, profile in current.items()
        ]
    )


@router.get(
    "/risk/profiles",
    response_model=ProfilesOut,
    summary="The supervision profile of each credit level in force (officials, admins)",
    responses=problems(401, 403, 503),
    operation_id="get_supervision_profiles",
)
async def get_profiles(session: SessionDep, settings: SettingsDep, principal: PrincipalDep) -> ProfilesOut:
    principal.require_reader()
    return await _profiles(session, settings)


@router.put(
    "/risk/profiles",
    response_model=ProfilesOut,
    summary="Change the supervision profiles at run time (officials, admins; audited)",
    description="All five levels at once. Bounds (GACC Order No. 251): AEO levels at most 20 % of the regular "
    "rate, 失信 levels at least 80 %, no better level inspected more than a worse one, only 失信 levels blocked. "
    "Out of bounds: `422 PROFILE_OUT_OF_BOUNDS`. Audited on the feed as `supervision_profiles_set`.",
    responses=problems(400, 401, 403, 413, 422, 503),
    operation_id="set_supervision_profiles",
)
async def set_profiles(
    data: ProfilesIn, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> ProfilesOut:
    service.require_supervisor(principal)
    await service.set_profiles(session, principal, data.profiles)
    return await _profiles(session, settings)
