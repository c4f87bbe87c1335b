"""Public services (公共服务): credit disclosure, complaints and a buyer's own quota check.

Nothing here answers with personal data: disclosure is aggregated by month with no cell of fewer than
``public_min_buyers`` buyers; a quota check answers only someone who knows the ID number, the name and a
telephone of a stored purchase, masked.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.models import Complaint, CreditAssessment, Declaration, Document, Enterprise, Goods, MatchRecord
from app.rules.credit import LEVEL_NAMES_ZH, CreditLevel
from app.rules.identity import normalise_phone
from app.schemas.ceb_types import CHINA_TZ
from app.schemas.public import (
    ComplaintIn,
    ComplaintTriage,
    MonthOperations,
    PublicEnterprise,
    QuotaCheckIn,
    QuotaCheckOut,
    QuotaDeclaration,
)
from app.services.audit import record_act
from app.services.auth import Principal
from app.services.enterprises import get_enterprise
from app.services.timeline import add_event

THOUSAND = Decimal("1000")


def _month_cells(rows: list[tuple[Any, Decimal, str]], min_buyers: int) -> list[MonthOperations]:
    months: dict[str, list[tuple[Decimal, str]]] = defaultdict(list)
    for created_at, value, buyer in rows:
        months[created_at.astimezone(CHINA_TZ).strftime("%Y-%m")].append((value, buyer))
    cells = []
    for month in sorted(months):
        entries = months[month]
        if len({buyer for _, buyer in entries}) < min_buyers:
            cells.append(MonthOperations(month=month, orders=None, value=None))
            continue
        total = sum((value for value, _ in entries), Decimal("0"))
        rounded = (total / THOUSAND).quantize(Decimal("1"), rounding=ROUND_HALF_UP) * THOUSAND
        cells.append(MonthOperations(month=month, orders=len(entries), value=rounded))
    return cells


async def public_enterprise(session: AsyncSession, settings: Settings, code: str) -> PublicEnterprise:
    enterprise = await get_enterprise(session, code)
    since = utcnow() - timedelta(days=366)
    rows = await session.execute(
        select(Declaration.created_at, Declaration.dutiable_value, Declaration.buyer_id_number)
        .join(MatchRecord, MatchRecord.id == Declaration.record_id)
        .where(
            or_(MatchRecord.ebc_code == code, MatchRecord.ebp_code == code),
            Declaration.counts_to_quota.is_(True),
            Declaration.created_at >= since,
        )
    )
    history = list(
        await session.scalars(
            select(CreditAssessment)
            .where(CreditAssessment.enterprise_code == code)
            .order_by(CreditAssessment.created_at.desc(), CreditAssessment.id)
        )
    )
    goods = await session.scalar(select(func.count()).select_from(Goods).where(Goods.ebc_code == code))
    complaints = await session.execute(
        select(Complaint.status, func.count()).where(Complaint.enterprise_code == code).group_by(Complaint.status)
    )
    level = CreditLevel(enterprise.credit_level)
    return PublicEnterprise(
        entity={
            "code": enterprise.code,
            "name": enterprise.name,
            "roles": enterprise.roles,
            "status": enterprise.status,
            "filed": enterprise.created_at.astimezone(CHINA_TZ).date().isoformat(),
        },
        operations=_month_cells([(r[0], r[1], r[2]) for r in rows], settings.public_min_buyers),
        supervision={
            "creditLevel": level.value,
            "creditLevelZh": LEVEL_NAMES_ZH[level],
            "since": history[0].effective_date.isoformat() if history else None,
        },
        services={"goodsRecords": int(goods or 0)},
        rewardsAndPenalties=[
            {
                "level": a.level,
                "levelZh": LEVEL_NAMES_ZH[CreditLevel(a.level)],
                "basis": a.basis,
                "effectiveDate": a.effective_date.isoformat(),
            }
            for a in history
        ],
        complaints={status: int(n) for status, n in complaints},
    )


async def file_complaint(session: AsyncSession, data: ComplaintIn) -> Complaint:
    now = utcnow()
    report = data.model_dump(mode="json", exclude_none=True, exclude={"kind", "enterpriseCode"})
    complaint = Complaint(
        kind=data.kind,
        enterprise_code=data.enterpriseCode or data.platformCode,
        report=report,
        status="received",
        record_ids=[],
        created_at=now,
        updated_at=now,
    )
    session.add(complaint)
    await session.flush()
    return complaint


async def list_complaints(
    session: AsyncSession, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Complaint], str | None]:
    try:
        after = int(cursor) if cursor is not None else 0
    except ValueError as exc:
        raise Unprocessable("The cursor is not one this service issued", code="INVALID_CURSOR") from exc
    query = select(Complaint).where(Complaint.id > after).order_by(Complaint.id).limit(limit + 1)
    if status is not None:
        query = query.where(Complaint.status == status)
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, str(rows[-1].id) if more else None


async def triage_complaint(
    session: AsyncSession, principal: Principal, complaint_id: int, data: ComplaintTriage
) -> Complaint:
    """Triage, links and upholding: on the linked records' timelines and in the audit trail."""
    actor = principal.actor
    complaint = await session.get(Complaint, complaint_id, with_for_update=True)
    if complaint is None:
        raise NotFound(f"No complaint {complaint_id}", code="COMPLAINT_NOT_FOUND")
    if data.enterpriseCode is not None:
        await get_enterprise(session, data.enterpriseCode)
    known = set(await session.scalars(select(MatchRecord.id).where(MatchRecord.id.in_(data.recordIds))))
    unknown = [str(r) for r in data.recordIds if r not in known]
    if unknown:
        raise NotFound(f"No records {', '.join(unknown)}", code="RECORD_NOT_FOUND")
    previous = complaint.status
    before = _triage_view(complaint)
    complaint.status, complaint.note, complaint.handled_by = data.status, data.note, actor
    complaint.enterprise_code = data.enterpriseCode or complaint.enterprise_code
    complaint.record_ids = sorted({*complaint.record_ids, *(str(r) for r in data.recordIds)})
    complaint.updated_at = utcnow()
    await record_act(
        session,
        principal,
        f"complaint.{data.status}",
        "complaint",
        complaint.id,
        before=before,
        after=_triage_view(complaint),
    )
    for record_id in data.recordIds:
        add_event(
            session,
            "complaint_linked",
            actor,
            record_id=record_id,
            detail={"complaintId": complaint.id, "kind": complaint.kind, "status": data.status},
        )
    add_event(
        session,
        "complaint_triaged",
        actor,
        detail={"complaintId": complaint.id, "from": previous, "to": data.status, "note": data.note},
    )
    await session.flush()
    return complaint


def _triage_view(c: Complaint) -> dict[str, Any]:
    """What triage changes (not the report: personal data stays out of the audit trail)."""
    return {
        "status": c.status,
        "enterpriseCode": c.enterprise_code,
        "recordIds": list(c.record_ids),
        "note": c.note,
        "handledBy": c.handled_by,
    }


async def upheld_complaints(session: AsyncSession, code: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Complaint)
        .where(Complaint.enterprise_code == code, Complaint.status == "upheld")
    )
    return int(count or 0)


def _mask_order(order_no: str) -> str:
    return order_no if len(order_no) <= 8 else order_no[:4] + "*" * (len(order_no) - 8) + order_no[-4:]


async def quota_check(session: AsyncSession, settings: Settings, data: QuotaCheckIn) -> QuotaCheckOut:
    """The year's declarations against this ID number — only when a stored purchase of it carries the same
    name and telephone. Every miss is the same 404, so the answer says nothing about an ID to a stranger."""
    buyer = data.idNumber.upper()
    year = data.year or utcnow().astimezone(CHINA_TZ).year
    declarations = list(
        await session.execute(
            select(
                Declaration.record_id,
                Declaration.dutiable_value,
                Declaration.returned_value,
                Declaration.counts_to_quota,
                Declaration.created_at,
            ).where(Declaration.buyer_id_number == buyer, Declaration.decl_year == year)
        )
    )
    # Every purchase of the year proves the buyer (a cancelled one too); only those that count use the quota.
    record_ids = [row.record_id for row in declarations]
    orders: dict[uuid.UUID, dict[str, Any]] = {}
    if record_ids:
        for doc in await session.scalars(
            select(Document).where(Document.record_id.in_(record_ids), Document.doc_type == "order")
        ):
            assert doc.record_id is not None
            orders[doc.record_id] = doc.payload
    phone = normalise_phone(data.telephone)
    proven = any(
        o.get("buyerName") == data.name and normalise_phone(str(o.get("buyerTelephone", ""))) == phone
        for o in orders.values()
    )
    if not proven:
        raise NotFound("No stored purchase matches this ID number, name and telephone", code="NOT_FOUND")
    platforms = {o.get("ebpCode") for o in orders.values()}
    names = dict(
        (await session.execute(select(Enterprise.code, Enterprise.name).where(Enterprise.code.in_(platforms)))).all()
    )
    counted = [row for row in declarations if row.counts_to_quota and row.dutiable_value > row.returned_value]
    used = sum((row.dutiable_value - row.returned_value for row in counted), Decimal("0"))
    listed = sorted(counted, key=lambda row: row.created_at)
    return QuotaCheckOut(
        year=year,
        idNumber=buyer[:6] + "*" * (len(buyer) - 10) + buyer[-4:],
        annualLimit=settings.annual_limit,
        used=used.quantize(Decimal("0.01")),
        remaining=max(settings.annual_limit - used, Decimal("0")).quantize(Decimal("0.01")),
        declarations=[
            QuotaDeclaration(
                date=row.created_at.astimezone(CHINA_TZ).date().isoformat(),
                platform=names.get(str(orders.get(row.record_id, {}).get("ebpCode")), "?"),
                orderNo=_mask_order(str(orders.get(row.record_id, {}).get("orderNo", ""))),
                value=(row.dutiable_value - row.returned_value).quantize(Decimal("0.01")),
            )
            for row in listed
        ],
    )
