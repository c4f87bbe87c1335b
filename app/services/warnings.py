"""The officials' warning queue and an enterprise's risk view. Services flush; the request commits."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Enterprise, MatchRecord, RiskWarning
from app.rules.credit import R8_FACTOR, WATCH_BELOW, EnterpriseRecord, local_score
from app.rules.risk import R8_MIN_RECORDS, PartyRates, enterprise_outliers
from app.services.audit import record_act
from app.services.auth import Principal
from app.services.enterprises import get_enterprise
from app.services.public import upheld_complaints
from app.services.timeline import add_event

# open → acknowledged → dismissed | escalated; open → dismissed | escalated. Dismissed and escalated are final.
NEXT_STATUS = {"acknowledge": "acknowledged", "dismiss": "dismissed", "escalate": "escalated"}
HANDLEABLE = {"acknowledge": ("open",), "dismiss": ("open", "acknowledged"), "escalate": ("open", "acknowledged")}


@dataclass(frozen=True)
class WarningFilter:
    status: str | None = None
    rule: str | None = None
    enterprise_code: str | None = None  # as platform, seller or carrier
    record_id: uuid.UUID | None = None


def _filtered(f: WarningFilter) -> Select[RiskWarning]:
    query = select(RiskWarning)
    if f.status is not None:
        query = query.where(RiskWarning.status == f.status)
    if f.rule is not None:
        query = query.where(RiskWarning.rule == f.rule)
    if f.enterprise_code is not None:
        code = f.enterprise_code
        query = query.where(
            or_(RiskWarning.ebp_code == code, RiskWarning.ebc_code == code, RiskWarning.logistics_code == code)
        )
    if f.record_id is not None:
        query = query.where(RiskWarning.record_id == f.record_id)
    return query


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        value = int(cursor)
    except ValueError as exc:
        raise Unprocessable("The cursor is not one this service issued", code="INVALID_CURSOR") from exc
    if value < 0:
        raise Unprocessable("The cursor is not one this service issued", code="INVALID_CURSOR")
    return value


async def list_warnings(
    session: AsyncSession, f: WarningFilter, cursor: str | None, limit: int
) -> tuple[list[RiskWarning], str | None]:
    """Oldest first (a queue), ``limit`` at a time from ``cursor``."""
    rows = list(
        await session.scalars(
            _filtered(f).where(RiskWarning.id > _after(cursor)).order_by(RiskWarning.id).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1].id) if more else None


async def handle_warning(
    session: AsyncSession, principal: Principal, warning_id: int, action: str, note: str
) -> RiskWarning:
    """The handling is on the record's timeline (officials' view of the case) and in the audit trail (who
    did what, for the service's own accountability), both in the request's transaction."""
    warning = await session.get(RiskWarning, warning_id, with_for_update=True)
    if warning is None:
        raise NotFound(f"No warning {warning_id}", code="WARNING_NOT_FOUND")
    if warning.status not in HANDLEABLE[action]:
        raise Conflict(
            f"Warning {warning_id} is {warning.status}: it cannot be {NEXT_STATUS[action]}",
            code="WARNING_ALREADY_HANDLED",
            warningStatus=warning.status,
        )
    previous = {"status": warning.status, "note": warning.note, "handledBy": warning.handled_by}
    actor = principal.actor
    warning.status, warning.note, warning.handled_by = NEXT_STATUS[action], note, actor
    warning.updated_at = utcnow()
    await record_act(
        session,
        principal,
        f"risk_warning.{warning.status}",
        "risk_warning",
        warning.id,
        before=previous,
        after={"status": warning.status, "note": note, "handledBy": actor, "rule": warning.rule},
    )
    add_event(
        session,
        "risk_warning_handled",
        actor,
        record_id=warning.record_id,
        detail={
            "warningId": warning.id,
            "rule": warning.rule,
            "from": previous["status"],
            "to": warning.status,
            "note": note,
        },
    )
    await session.flush()
    return warning


@dataclass(frozen=True)
class EnterpriseRiskView:
    enterprise: Enterprise
    record: EnterpriseRecord
    score: int
    recent_rejection_rate: float  # the last 7 days (R8)
    peer_recent_rejection_median: float
    rejection_outlier: bool  # R8
    open_by_rule: dict[str, int]
    recent: list[RiskWarning]


Rates = dict[str, tuple[int, float, float]]  # party → (records, mismatch rate, rejection rate)


async def party_rates(session: AsyncSession, column: Any, since: datetime | None) -> Rates:
    """Each party's records, mismatch and rejection rates (one grouped query)."""
    query = (
        select(
            column,
            func.count(),
            func.sum(case((MatchRecord.status == "MISMATCHED", 1), else_=0)),
            func.sum(case((MatchRecord.status == "REJECTED", 1), else_=0)),
        )
        .where(column.is_not(None))
        .group_by(column)
    )
    if since is not None:
        query = query.where(MatchRecord.created_at >= since)
    return {party: (int(n), int(m or 0) / n, int(r or 0) / n) for party, n, m, r in await session.execute(query) if n}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


async def enterprise_risk(session: AsyncSession, code: str, settings: Settings | None = None) -> EnterpriseRiskView:
    """The enterprise's level, its own record against its peers (sellers against sellers, else platforms
    against platforms), its local score, R8 over the last 7 days (the rule the housekeeping raises warnings
    with, ``settings``' factor and minimum records; without settings, the defaults), open warnings by rule and
    the newest ones."""
    enterprise = await get_enterprise(session, code)
    column = MatchRecord.ebc_code if "seller" in enterprise.roles else MatchRecord.ebp_code
    rates = await party_rates(session, column, None)
    mine = rates.pop(code, (0, 0.0, 0.0))
    peers = list(rates.values())
    record = EnterpriseRecord(
        records=mine[0],
        mismatch_rate=mine[1],
        rejection_rate=mine[2],
        peer_mismatch_median=_median([p[1] for p in peers]),
        peer_rejection_median=_median([p[2] for p in peers]),
        complaints_upheld=await upheld_complaints(session, code),
    )
    week = await party_rates(session, column, utcnow() - timedelta(days=7))
    factor = settings.risk_r8_factor if settings is not None else R8_FACTOR
    min_records = settings.risk_r8_min_records if settings is not None else R8_MIN_RECORDS
    outliers = enterprise_outliers({c: PartyRates(n, r) for c, (n, _m, r) in week.items()}, factor, min_records)
    recent_mine = week.pop(code, (0, 0.0, 0.0))
    peer_recent = _median([p[2] for p in week.values() if p[0] >= min_records])
    about = WarningFilter(enterprise_code=code)
    open_by_rule = dict(
        (
            await session.execute(
                _filtered(about)
                .where(RiskWarning.status == "open")
                .with_only_columns(RiskWarning.rule, func.count())
                .group_by(RiskWarning.rule)
            )
        ).all()
    )
    recent = list(await session.scalars(_filtered(about).order_by(RiskWarning.id.desc()).limit(20)))
    return EnterpriseRiskView(
        enterprise,
        record,
        local_score(record),
        recent_mine[2],
        peer_recent,
        code in outliers,
        {k: int(v) for k, v in open_by_rule.items()},
        recent,
    )


__all__ = ["WATCH_BELOW", "WarningFilter", "enterprise_risk", "handle_warning", "list_warnings"]
