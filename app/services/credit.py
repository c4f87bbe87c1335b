"""Customs credit levels of enterprises (set by officials, with history) and the supervision profiles.

Officials and admins set levels and profiles; both are audited on the feed (``credit_level_set``,
``supervision_profiles_set``). Services flush; the request's unit of work commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.errors import Forbidden, Unprocessable
from app.models import CreditAssessment, Enterprise, SupervisionProfileRow
from app.rules.credit import CreditLevel, SupervisionProfile, default_profiles, profile_problems
from app.schemas.credit import CreditSet, ProfileIn
from app.services.audit import record_act
from app.services.auth import Principal
from app.services.enterprises import get_enterprise
from app.services.timeline import add_event


def require_supervisor(principal: Principal) -> None:
    """Credit and supervision are customs' decisions: officials (and admins) make them."""
    if principal.kind not in ("official", "admin"):
        raise Forbidden("Only officials and admins set credit and supervision", code="OFFICIAL_REQUIRED")


async def set_credit(session: AsyncSession, principal: Principal, code: str, data: CreditSet) -> Enterprise:
    enterprise = await get_enterprise(session, code)
    previous = enterprise.credit_level
    now = utcnow()
    session.add(
        CreditAssessment(
            enterprise_code=code,
            level=data.level.value,
            previous_level=previous,
            basis=data.basis,
            effective_date=data.effectiveDate,
            set_by=principal.actor,
            created_at=now,
        )
    )
    enterprise.credit_level = data.level.value
    await record_act(
        session,
        principal,
        "credit.level_set",
        "enterprise",
        code,
        before={"level": previous},
        after={"level": data.level.value, "basis": data.basis, "effectiveDate": data.effectiveDate},
    )
    add_event(
        session,
        "credit_level_set",
        principal.actor,
        detail={"enterpriseCode": code, "from": previous, "to": data.level.value, "basis": data.basis},
    )
    await session.flush()
    return enterprise


async def credit_history(session: AsyncSession, code: str) -> list[CreditAssessment]:
    rows = await session.scalars(
        select(CreditAssessment)
        .where(CreditAssessment.enterprise_code == code)
        .order_by(CreditAssessment.created_at.desc(), CreditAssessment.id)
    )
    return list(rows)


def configured_profiles(settings: Settings) -> dict[CreditLevel, SupervisionProfile]:
    # Decimal(str(...)): settings copied with model_copy(update=…) (tests, tools) are not validated again.
    return default_profiles(
        regular=Decimal(str(settings.supervision_rate_regular)),
        certified_share=Decimal(str(settings.supervision_certified_share)),
        advanced_share=Decimal(str(settings.supervision_advanced_share)),
        dishonest=Decimal(str(settings.supervision_rate_dishonest)),
        seriously_dishonest=Decimal(str(settings.supervision_rate_seriously_dishonest)),
        block_seriously_dishonest=settings.supervision_block_seriously_dishonest,
    )


async def stored_profiles(session: AsyncSession) -> dict[CreditLevel, SupervisionProfileRow]:
    return {CreditLevel(row.level): row for row in await session.scalars(select(SupervisionProfileRow))}


async def current_profiles(session: AsyncSession, settings: Settings) -> dict[CreditLevel, SupervisionProfile]:
    """The profiles in force: an official's stored ones over the configured defaults (one small read)."""
    profiles = configured_profiles(settings)
    for level, row in (await stored_profiles(session)).items():
        profiles[level] = SupervisionProfile(level, row.inspection_rate, row.block)
    return profiles


async def set_profiles(session: AsyncSession, principal: Principal, given: Iterable[ProfileIn]) -> None:
    """Replace every level's profile (all five at once, so that the bounds between them are checked whole)."""
    profiles = {p.level: SupervisionProfile(p.level, p.inspectionRate, p.block) for p in given}
    problems = profile_problems(profiles)
    if problems:
        raise Unprocessable("; ".join(problems), code="PROFILE_OUT_OF_BOUNDS", problems=problems)
    stored = await stored_profiles(session)
    before = {
        level.value: {"inspectionRate": str(row.inspection_rate), "block": row.block} for level, row in stored.items()
    }
    now = utcnow()
    for level, profile in profiles.items():
        row = stored.get(level)
        if row is None:
            row = SupervisionProfileRow(level=level.value)
            session.add(row)
        row.inspection_rate, row.block = profile.inspection_rate, profile.block
        row.updated_by, row.updated_at = principal.actor, now
    after = {p.level.value: {"inspectionRate": str(p.inspection_rate), "block": p.block} for p in profiles.values()}
    await record_act(
        session, principal, "supervision.profiles_set", "supervision_profiles", "all", before=before, after=after
    )
    add_event(
        session,
        "supervision_profiles_set",
        principal.actor,
        detail={
            "profiles": [
                {"level": p.level.value, "inspectionRate": str(p.inspection_rate.normalize()), "block": p.block}
                for p in profiles.values()
            ]
        },
    )
    await session.flush()
