"""Declaration: when a record matches, compose its inventory (清单), assess the tax, check the limits and
write the outbox — all in the transaction that matched it (ARCHITECTURE.md invariant 4)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import BUYER_LOCKS, advisory_xact_lock, utcnow
from app.models import Declaration, Dispatch, Enterprise, Goods, MatchRecord
from app.rules.inventory import DeclarationParty, GoodsRecord, compose_inventory
from app.rules.matching import GoodsFacts, assess_order
from app.rules.tax import TaxAssessment, cents, check_limits
from app.schemas.ceb_types import CHINA_TZ
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.services.timeline import add_event

DISPATCH_CHANNEL = "sw_dispatch"  # PostgreSQL NOTIFY channel the dispatchers LISTEN on


def goods_facts(goods: Mapping[str, Goods]) -> dict[str, GoodsFacts]:
    return {
        item_no: GoodsFacts(item_no=item_no, vat_rate=g.vat_rate, consumption_tax_rate=g.consumption_tax_rate)
        for item_no, g in goods.items()
    }


def tax_view(assessment: TaxAssessment) -> dict[str, Any]:
    """The tax with the CEB816 names, decimals as strings."""
    return {
        "customsTax": str(cents(assessment.customs_tax)),
        "valueAddedTax": str(assessment.value_added_tax),
        "consumptionTax": str(assessment.consumption_tax),
        "taxTotal": str(assessment.tax_total),
        "dutiableValue": str(assessment.dutiable_value),
        "lines": [
            {
                "gnum": line.gnum,
                "taxPrice": str(line.tax_price),
                "customsTax": str(cents(line.customs_tax)),
                "valueAddedTax": str(line.value_added_tax),
                "consumptionTax": str(line.consumption_tax),
            }
            for line in assessment.lines
        ],
    }


async def lock_buyer(session: AsyncSession, buyer_id_number: str) -> None:
    """Serialise quota checks of one buyer (two purchases declared at once cannot both slip under)."""
    await advisory_xact_lock(session, f"buyer:{buyer_id_number.upper()}", BUYER_LOCKS)


async def used_quota(session: AsyncSession, buyer_id_number: str, year: int) -> Decimal:
    """The buyer's dutiable values already declared this year (summed exactly, in Python)."""
    values = await session.scalars(
        select(Declaration.dutiable_value).where(
            func.upper(Declaration.buyer_id_number) == buyer_id_number.upper(),
            Declaration.decl_year == year,
            Declaration.counts_to_quota.is_(True),
        )
    )
    return cents(sum(values, Decimal("0")))


async def declare(
    session: AsyncSession,
    record: MatchRecord,
    order: OrderIn,
    payment: PaymentIn,
    waybill: WaybillIn,
    goods: Mapping[str, Goods],
    actor: str,
    settings: Settings,
) -> None:
    """MATCHED → DECLARED (with one outbox row per agency), or REJECTED when a limit is exceeded."""
    assessment = assess_order(order, goods_facts(goods), waybill)
    now = utcnow()
    china_now = now.astimezone(CHINA_TZ)
    await lock_buyer(session, order.buyerIdNumber)
    used = await used_quota(session, order.buyerIdNumber, china_now.year)
    breaches = check_limits(assessment.dutiable_value, used, settings.single_limit, settings.annual_limit)
    party = await _party(session, order, settings)
    inventory = compose_inventory(
        guid=str(uuid.uuid4()).upper(),
        cop_no=record.id.hex[:20],
        app_time=china_now.strftime("%Y%m%d%H%M%S"),
        decl_date=china_now.strftime("%Y%m%d"),
        order=order,
        payment=payment,
        waybill=waybill,
        goods={k: _goods_record(g) for k, g in goods.items()},
        party=party,
    )
    rejection = None
    if breaches:
        first = breaches[0]
        rejection = {
            "agency": "single-window",
            "code": first.code,
            "cebReturnStatus": first.ceb_return_status,
            "returnInfo": _limit_message(first.code, first.limit, first.used, first.this_purchase, order),
            "breaches": [
                {"code": b.code, "cebReturnStatus": b.ceb_return_status, "limit": str(b.limit), "used": str(b.used)}
                for b in breaches
            ],
        }
    session.add(
        Declaration(
            record_id=record.id,
            inventory=inventory,
            tax=tax_view(assessment),
            dutiable_value=assessment.dutiable_value,
            buyer_id_number=order.buyerIdNumber,
            decl_year=china_now.year,
            counts_to_quota=not breaches,
            rejection=rejection,
            created_at=now,
        )
    )
    status = "REJECTED" if breaches else "DECLARED"
    add_event(session, "status_changed", actor, record_id=record.id, detail={"from": record.status, "to": status})
    if rejection:
        add_event(session, "declaration_rejected", actor, record_id=record.id, detail=rejection)
    record.status, record.rejection, record.updated_at = status, rejection, now
    if breaches:
        return
    for agency in enabled_agencies(settings):
        session.add(Dispatch(record_id=record.id, agency=agency, status="pending", attempts=0, next_attempt_at=now))
        record.agencies = {**record.agencies, agency: {"status": "pending", "returnStatus": None, "returnInfo": None}}
    await session.flush()
    await notify_dispatchers(session)


async def notify_dispatchers(session: AsyncSession) -> None:
    """Wake the dispatchers when this transaction commits (PostgreSQL; SQLite's dispatcher polls)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {DISPATCH_CHANNEL}"))


def enabled_agencies(settings: Settings) -> list[str]:
    return [a.strip() for a in settings.agencies.split(",") if a.strip()]


def _goods_record(g: Goods) -> GoodsRecord:
    return GoodsRecord(
        item_no=g.item_no,
        gcode=g.gcode,
        gname=g.gname,
        unit1=g.unit1,
        qty1_factor=g.qty1_factor,
        unit2=g.unit2,
        qty2_factor=g.qty2_factor,
        country=g.country,
        positive_list=g.positive_list,
    )


async def _party(session: AsyncSession, order: OrderIn, settings: Settings) -> DeclarationParty:
    agent_code = settings.declarant_code or order.ebcCode
    agent_name = settings.declarant_name
    if agent_name is None:
        enterprise = await session.get(Enterprise, agent_code)
        agent_name = enterprise.name if enterprise is not None else order.ebcName
    return DeclarationParty(
        agent_code=agent_code,
        agent_name=agent_name,
        assure_code=settings.guarantor_code or order.ebcCode,
        customs_code=settings.customs_code,
        port_code=settings.port_code,
        trade_mode=settings.trade_mode,
        traf_mode=settings.traf_mode,
    )


def _limit_message(code: str, limit: Decimal, used: Decimal, this: Decimal, order: OrderIn) -> str:
    if code == "SINGLE_LIMIT_EXCEEDED":
        return f"订单完税价格{this}元超过单次交易限值{limit}元 / dutiable value {this} exceeds the single limit {limit}"
    return (
        f"订购人{order.buyerName}本年度已使用额度{used}元,本次{this}元将超过年度限值{limit}元 / "
        f"buyer has used {used} of the annual quota; {this} more would exceed {limit}"
    )
