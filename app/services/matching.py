"""Linking documents to match records and re-running the pure matching rules.

Everything here runs inside the intake transaction, after ``lock_order_numbers``: all writes that
touch one order number are serialised, so matching is race-free whatever the arrival order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import ORDER_LOCKS, advisory_xact_lock, utcnow
from app.models import Document, MatchRecord
from app.rules.matching import MatchInput, evaluate
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.services.declaration import declare, goods_facts
from app.services.goods import load_goods
from app.services.timeline import add_event

# Statuses after which the record's documents are frozen (the next issues set them).
FROZEN_STATUSES = frozenset({"DECLARED", "INSPECTION", "CLEARED", "REJECTED"})


async def lock_order_numbers(session: AsyncSession, order_numbers: Iterable[str]) -> None:
    """Serialise every transaction that touches these order numbers (sorted, so batches cannot deadlock).

    PostgreSQL: a transaction-scoped advisory lock per order number. SQLite: the unit of work already
    began with BEGIN IMMEDIATE, which serialises all writers.
    """
    for order_no in sorted(set(order_numbers)):
        await advisory_xact_lock(session, order_no, ORDER_LOCKS)


def parse_payload(doc: Document) -> OrderIn | PaymentIn | WaybillIn:
    if doc.doc_type == "order":
        return OrderIn.model_validate(doc.payload)
    if doc.doc_type == "payment":
        return PaymentIn.model_validate(doc.payload)
    return WaybillIn.model_validate(doc.payload)


async def get_or_create_record(
    session: AsyncSession, ebp_code: str, order_no: str, actor: str
) -> tuple[MatchRecord, bool]:
    """The record of (ebpCode, orderNo), and whether it was created now."""
    record = await session.scalar(
        select(MatchRecord).where(MatchRecord.ebp_code == ebp_code, MatchRecord.order_no == order_no)
    )
    if record is not None:
        return record, False
    now = utcnow()
    record = MatchRecord(
        ebp_code=ebp_code,
        order_no=order_no,
        status="AWAITING_DOCUMENTS",
        missing=["order", "payment", "waybill"],
        discrepancies=[],
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    await session.flush()
    add_event(
        session,
        "record_created",
        actor,
        record_id=record.id,
        detail={"ebpCode": ebp_code, "orderNo": order_no},
    )
    return record, True


async def records_for_order_no(session: AsyncSession, order_no: str) -> list[MatchRecord]:
    return list(await session.scalars(select(MatchRecord).where(MatchRecord.order_no == order_no)))


async def link_waybill(session: AsyncSession, waybill: Document, actor: str) -> set[uuid.UUID]:
    """Attach a waybill to its record; returns the records whose outcome may have changed.

    A waybill carries only ``orderNo``: with the JSON extension ``ebpCode`` it names its record; else it
    links when exactly one record has that order number, and waits (flagged ambiguous) when several do.
    """
    candidates = await records_for_order_no(session, waybill.order_no)
    if waybill.ebp_code is not None:
        record, created = await get_or_create_record(session, waybill.ebp_code, waybill.order_no, actor)
        changed = _attach(session, waybill, record, actor)
        if created:
            changed |= await settle_waybills(session, waybill.order_no, actor)
        # The other records of this order number may have been flagged ambiguous while it waited.
        return changed | {r.id for r in candidates}
    if len(candidates) == 1:
        return _attach(session, waybill, candidates[0], actor)
    return {r.id for r in candidates}


def _attach(session: AsyncSession, doc: Document, record: MatchRecord, actor: str) -> set[uuid.UUID]:
    if doc.record_id == record.id:
        return {record.id}
    changed = {record.id}
    if doc.record_id is not None:
        changed.add(doc.record_id)
        add_event(session, "document_unlinked", actor, record_id=doc.record_id, document_id=doc.id)
    doc.record_id = record.id
    add_event(
        session,
        "document_linked",
        actor,
        record_id=record.id,
        document_id=doc.id,
        detail={"documentType": doc.doc_type, "ownerCode": doc.owner_code, "businessNo": doc.business_no},
    )
    return changed


async def settle_waybills(session: AsyncSession, order_no: str, actor: str) -> set[uuid.UUID]:
    """A record appeared for this order number: re-link the waybills that carry no ``ebpCode``.

    With one record, waiting waybills link to it. With several, a waybill linked to one of them while it
    was the only candidate becomes ambiguous and waits again (unless that record is frozen), so that the
    outcome does not depend on whether the waybill came before or after the second platform's order.
    """
    records = await records_for_order_no(session, order_no)
    waybills = list(
        await session.scalars(
            select(Document).where(
                Document.doc_type == "waybill",
                Document.order_no == order_no,
                Document.ebp_code.is_(None),
                Document.state != "cancelled",
            )
        )
    )
    changed: set[uuid.UUID] = set()
    if len(records) == 1:
        for waybill in waybills:
            if waybill.record_id is None:
                changed |= _attach(session, waybill, records[0], actor)
        return changed
    frozen = {r.id for r in records if r.status in FROZEN_STATUSES}
    for waybill in waybills:
        if waybill.record_id is not None and waybill.record_id not in frozen:
            add_event(
                session,
                "document_unlinked",
                actor,
                record_id=waybill.record_id,
                document_id=waybill.id,
                detail={"reason": "WAYBILL_AMBIGUOUS"},
            )
            waybill.record_id = None
    return {r.id for r in records}


async def record_ids_for_order_no(session: AsyncSession, order_no: str) -> set[uuid.UUID]:
    return {r.id for r in await records_for_order_no(session, order_no)}


async def target_record(
    session: AsyncSession, doc_type: str, order_no: str, ebp_code: str | None
) -> MatchRecord | None:
    """The existing record a document with these link fields would join (None: a new one, or none yet)."""
    if ebp_code is not None:
        return await session.scalar(
            select(MatchRecord).where(MatchRecord.ebp_code == ebp_code, MatchRecord.order_no == order_no)
        )
    candidates = await records_for_order_no(session, order_no) if doc_type == "waybill" else []
    return candidates[0] if len(candidates) == 1 else None


async def link_document(session: AsyncSession, doc: Document, actor: str) -> set[uuid.UUID]:
    """Attach an order, payment or waybill to its record (creating it); returns records to re-evaluate."""
    if doc.doc_type == "waybill":
        return await link_waybill(session, doc, actor)
    assert doc.ebp_code is not None
    record, created = await get_or_create_record(session, doc.ebp_code, doc.order_no, actor)
    changed = _attach(session, doc, record, actor)
    if created:
        changed |= await settle_waybills(session, doc.order_no, actor)
    return changed


async def evaluate_records(
    session: AsyncSession, record_ids: Iterable[uuid.UUID], actor: str, settings: Settings
) -> None:
    for record_id in sorted(record_ids):
        record = await session.get(MatchRecord, record_id)
        if record is not None and record.status not in FROZEN_STATUSES:
            await evaluate_record(session, record, actor, settings)


async def evaluate_record(session: AsyncSession, record: MatchRecord, actor: str, settings: Settings) -> None:
    docs = list(await session.scalars(select(Document).where(Document.record_id == record.id)))
    active = [d for d in docs if d.state == "active"]
    order_rows = [d for d in docs if d.doc_type == "order" and d.state != "cancelled"]
    orders = [d for d in active if d.doc_type == "order"]
    ambiguous: list[WaybillIn] = []
    if not any(d.doc_type == "waybill" for d in active):
        ambiguous = await _ambiguous_waybills(session, record.order_no)
    order = OrderIn.model_validate(orders[0].payload) if orders else None
    goods = await load_goods(session, order.ebcCode, [line.itemNo for line in order.orderList]) if order else {}
    payments = [PaymentIn.model_validate(d.payload) for d in active if d.doc_type == "payment"]
    waybills = [WaybillIn.model_validate(d.payload) for d in active if d.doc_type == "waybill"]

    outcome = evaluate(
        MatchInput(
            order=order,
            payments=payments,
            waybills=waybills,
            ambiguous_waybills=ambiguous,
            tolerance=settings.amount_tolerance,
            goods=goods_facts(goods) if order else None,
        )
    )
    status: str = outcome.status
    if docs and not active and all(d.state == "cancelled" for d in docs):
        status = "CANCELLED"
    if order_rows:
        record.ebc_code = order_rows[0].payload["ebcCode"]
        record.buyer_id_number = order_rows[0].payload["buyerIdNumber"]
    discrepancies = [d.model_dump(mode="json") for d in outcome.discrepancies]
    if status != record.status:
        add_event(
            session,
            "status_changed",
            actor,
            record_id=record.id,
            detail={"from": record.status, "to": status},
        )
        if status == "MATCHED":
            record.matched_at = utcnow()
    if status != record.status or discrepancies != record.discrepancies or outcome.missing != record.missing:
        record.status = status
        record.discrepancies = discrepancies
        record.missing = outcome.missing
        record.updated_at = utcnow()
    if record.status == "MATCHED" and order is not None:
        # Matched means exactly one active payment and one active waybill (else MULTIPLE_* errors).
        await declare(session, record, order, payments[0], waybills[0], goods, actor, settings)


async def _ambiguous_waybills(session: AsyncSession, order_no: str) -> list[WaybillIn]:
    """Active waybills with this order number that could not pick between several records."""
    waiting = list(
        await session.scalars(
            select(Document).where(
                Document.doc_type == "waybill",
                Document.order_no == order_no,
                Document.record_id.is_(None),
                Document.ebp_code.is_(None),
                Document.state == "active",
            )
        )
    )
    if not waiting or len(await records_for_order_no(session, order_no)) < 2:
        return []
    return [WaybillIn.model_validate(d.payload) for d in waiting]
