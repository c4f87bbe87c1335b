"""The declare stage: when a record matches, compose its inventory (清单), assess the tax, check the limits
and write the outbox — all in the matcher's transaction that matched it (one per micro-batch)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import BUYER_LOCKS, advisory_xact_locks, utcnow
from app.lifecycle.apply import apply_event
from app.lifecycle.status import Effect, RecordEvent
from app.models import Declaration, Enterprise, Goods
from app.rules.inventory import (
    REFUSAL_CODES,
    DeclarationParty,
    GoodsRecord,
    InventoryRefusal,
    compose_inventory,
)
from app.rules.matching import GoodsFacts, assess_order
from app.rules.rollups import risk_cells
from app.rules.supervision import Decision
from app.rules.tax import TaxAssessment, cents, check_limits
from app.schemas.ceb_types import CHINA_TZ
from app.schemas.documents import OrderIn
from app.services.risk import supervisor, warning_rows
from app.services.workspace import Workspace

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


def buyer_key(buyer_id_number: str) -> str:
    """Quota and lock key of a buyer: ID numbers compare case-insensitively (a check digit may be x or X)."""
    return buyer_id_number.upper()


async def used_quotas(session: AsyncSession, buyers: Iterable[str], year: int) -> dict[str, Decimal]:
    """Each buyer's dutiable values already declared this year, by ``buyer_key`` (summed exactly, in Python)."""
    wanted = sorted(set(buyers))
    used = dict.fromkeys(wanted, Decimal("0"))
    if wanted:
        rows = await session.execute(
            select(Declaration.buyer_id_number, Declaration.dutiable_value, Declaration.returned_value).where(
                Declaration.buyer_id_number.in_(wanted),
                Declaration.decl_year == year,
                Declaration.counts_to_quota.is_(True),
            )
        )
        # An approved return gave part of a purchase back (returned_value); an approved cancel all of it.
        for buyer, value, returned in rows:
            used[buyer] += value - (returned or Decimal("0"))
    return used


async def declare_matched(ws: Workspace) -> None:
    """Every record that matched in this unit of work: MATCHED → DECLARED (with one outbox row per agency),
    or REJECTED when a limit is exceeded.

    The buyers' quota locks are taken together, in sorted order, after the order-number locks — so two
    requests cannot deadlock on them — and the year's quota use is read once for all of them; purchases of
    one buyer in the same request count against each other in the order they matched.
    """
    if not ws.matched:
        return
    session, settings = ws.session, ws.settings
    now = utcnow()
    china_now = now.astimezone(CHINA_TZ)
    buyers = {buyer_key(m.order.buyerIdNumber) for m in ws.matched}
    with session.no_autoflush:  # the unit of work writes once, at the end (``Workspace.write``)
        await advisory_xact_locks(session, [f"buyer:{b}" for b in buyers], BUYER_LOCKS)
        used = await used_quotas(session, buyers, china_now.year)
        agent_names = await _agent_names(session, [m.order for m in ws.matched], settings)
        supervision = (
            await supervisor(
                session,
                settings,
                [(m.order, m.waybill.logisticsCode, m.payment.payTime) for m in ws.matched],
                now,
            )
            if settings.risk_enabled
            else None
        )
    agencies = enabled_agencies(settings)
    dispatched = False
    for index, matched in enumerate(ws.matched):
        record, order = matched.record, matched.order
        buyer = buyer_key(order.buyerIdNumber)
        assessment = assess_order(order, goods_facts(matched.goods), matched.waybill)
        breaches = check_limits(
            assessment.dutiable_value, cents(used[buyer]), settings.single_limit, settings.annual_limit
        )
        composed = compose_inventory(
            guid=str(uuid.uuid4()).upper(),
            cop_no=record.id.hex[:20],
            app_time=china_now.strftime("%Y%m%d%H%M%S"),
            decl_date=china_now.strftime("%Y%m%d"),
            order=order,
            payment=matched.payment,
            waybill=matched.waybill,
            goods={k: _goods_record(g) for k, g in matched.goods.items()},
            party=_party(order, settings, agent_names),
        )
        inventory, refusals = composed.inventory, composed.refusals
        rejection = None
        if refusals:
            rejection = _refusal(refusals)
        elif breaches:
            first = breaches[0]
            rejection = {
                "agency": "single-window",
                "code": first.code,
                "cebReturnStatus": first.ceb_return_status,
                "returnInfo": _limit_message(first.code, first.limit, first.used, first.this_purchase, order),
                "breaches": [
                    {
                        "code": b.code,
                        "cebReturnStatus": b.ceb_return_status,
                        "limit": str(b.limit),
                        "used": str(b.used),
                    }
                    for b in breaches
                ],
            }
        else:
            used[buyer] += assessment.dutiable_value
        risk = None
        if rejection is None and supervision is not None:
            # The seam of the declare stage: tax and limits have spoken; the risk and credit decision follows.
            carrier = matched.waybill.logisticsCode
            decision, warnings = supervision.decide(index, str(record.id), order, carrier, used[buyer])
            risk = decision.view()
            ws.event("risk_decision", record_id=record.id, detail=risk)
            ws.risk_warnings.extend(warning_rows(record.id, order, carrier, warnings, now))
            # Counted for the dashboard in this same transaction, as the rebuild counts them from the rows.
            parties = (order.ebpCode, order.ebcCode, settings.trade_mode, settings.port_code)
            ws.tally.add(risk_cells(now, parties, risk["levels"], decision.action, [w.rule for w in warnings]))
            if decision.action == "block":
                rejection = _blocked(decision)
                used[buyer] -= assessment.dutiable_value
        ws.declarations.append(
            {
                "record_id": record.id,
                "inventory": inventory,
                "tax": tax_view(assessment),
                "dutiable_value": assessment.dutiable_value,
                "buyer_id_number": buyer,
                "decl_year": china_now.year,
                "counts_to_quota": not rejection,
                "rejection": rejection,
                "risk": risk,
                "created_at": now,
            }
        )
        record.rejection = rejection
        record.tax_total = assessment.tax_total
        record.trade_mode, record.port_code = settings.trade_mode, settings.port_code
        if refusals:
            event = RecordEvent.INVENTORY_REFUSED
        elif breaches:
            event = RecordEvent.LIMITS_BREACHED
        elif rejection:
            event = RecordEvent.DECLARATION_BLOCKED
        else:
            event = RecordEvent.DECLARATION_ACCEPTED
        effects = apply_event(record, event, lambda kind, rec, detail: ws.event(kind, record_id=rec.id, detail=detail))
        if rejection:
            ws.event("declaration_rejected", record_id=record.id, detail=rejection)
        if Effect.DISPATCH not in effects:
            continue
        ws.dispatches.extend(
            {
                "id": uuid.uuid4(),
                "record_id": record.id,
                "agency": agency,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_error": None,
                "delivered_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for agency in agencies
        )
        record.agencies = {
            **record.agencies,
            **{agency: {"status": "pending", "returnStatus": None, "returnInfo": None} for agency in agencies},
        }
        dispatched = True
    ws.matched.clear()
    if dispatched:
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


async def _agent_names(session: AsyncSession, orders: Iterable[OrderIn], settings: Settings) -> dict[str, str]:
    """The filed names of the declaring agents (the sellers, unless a declarant is configured)."""
    if settings.declarant_name is not None:
        return {}
    codes = sorted({settings.declarant_code or order.ebcCode for order in orders})
    rows = await session.execute(select(Enterprise.code, Enterprise.name).where(Enterprise.code.in_(codes)))
    return {code: name for code, name in rows}


def _party(order: OrderIn, settings: Settings, agent_names: Mapping[str, str]) -> DeclarationParty:
    agent_code = settings.declarant_code or order.ebcCode
    agent_name = settings.declarant_name or agent_names.get(agent_code, order.ebcName)
    return DeclarationParty(
        agent_code=agent_code,
        agent_name=agent_name,
        assure_code=settings.guarantor_code or order.ebcCode,
        customs_code=settings.customs_code,
        port_code=settings.port_code,
        trade_mode=settings.trade_mode,
        traf_mode=settings.traf_mode,
        traf_no=settings.traf_no,
        voyage_no=settings.voyage_no,
    )


def _refusal(refusals: list[InventoryRefusal]) -> dict[str, Any]:
    """The record's rejection when its inventory cannot be declared (``rules.inventory.REFUSAL_CODES``)."""
    first = refusals[0]
    code = REFUSAL_CODES[first.code]
    return {
        "agency": "single-window",
        "code": first.code,
        "cebReturnStatus": first.ceb_return_status,
        "returnInfo": f"{code.zh} / {code.en}: " + "; ".join(r.detail for r in refusals),
        "refusals": [{"code": r.code, "cebReturnStatus": r.ceb_return_status, "detail": r.detail} for r in refusals],
    }


def _blocked(decision: Decision) -> dict[str, Any]:
    """The record's rejection when a party's credit level is configured to block (``supervision_profile``)."""
    parties = ", ".join(f"{r['party']} ({r['level']})" for r in decision.reasons)
    return {
        "agency": "single-window",
        "code": "CREDIT_BLOCKED",
        "cebReturnStatus": None,
        "returnInfo": f"严重失信企业参与的申报不予放行 / a party's credit level blocks the declaration: {parties}",
        "reasons": decision.reasons,
    }


def _limit_message(code: str, limit: Decimal, used: Decimal, this: Decimal, order: OrderIn) -> str:
    if code == "SINGLE_LIMIT_EXCEEDED":
        return f"订单完税价格{this}元超过单次交易限值{limit}元 / dutiable value {this} exceeds the single limit {limit}"
    return (
        f"订购人{order.buyerName}本年度已使用额度{used}元,本次{this}元将超过年度限值{limit}元 / "
        f"buyer has used {used} of the annual quota; {this} more would exceed {limit}"
    )
