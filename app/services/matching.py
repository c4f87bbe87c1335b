"""Linking documents to match records and re-running the pure matching rules.

Everything here runs inside the intake unit of work, in memory, against its ``Workspace``: the order numbers
involved are locked and every record and document that carries one is loaded, so matching is race-free
whatever the arrival order, and costs no round trip per document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from app.db import utcnow
from app.lifecycle.apply import apply_event
from app.lifecycle.status import FROZEN, RecordEvent, RecordStatus
from app.rules.matching import MatchInput, evaluate
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.services.declaration import goods_facts
from app.services.rows import DocumentRow, RecordRow
from app.services.workspace import MatchedPurchase, Workspace

# MATCHED never outlives the matcher's transaction that reached it: the record is declared (DECLARED or
# REJECTED) before commit, so from the moment it matches it is as frozen as a declared one.
SETTLED_STATUSES = frozenset(status.value for status in FROZEN)
OUTCOME_EVENTS = {
    RecordStatus.AWAITING_DOCUMENTS: RecordEvent.DOCUMENTS_INCOMPLETE,
    RecordStatus.MISMATCHED: RecordEvent.DOCUMENTS_DISAGREE,
    RecordStatus.MATCHED: RecordEvent.DOCUMENTS_AGREE,
    RecordStatus.CANCELLED: RecordEvent.DOCUMENTS_CANCELLED,
}


def get_or_create_record(ws: Workspace, ebp_code: str, order_no: str) -> tuple[RecordRow, bool]:
    """The record of (ebpCode, orderNo), and whether it was created now."""
    record = ws.record(ebp_code, order_no)
    if record is not None:
        return record, False
    now = utcnow()
    record = RecordRow(
        id=uuid.uuid4(),
        ebp_code=ebp_code,
        order_no=order_no,
        ebc_code=None,
        buyer_id_number=None,
        status="AWAITING_DOCUMENTS",
        missing=["order", "payment", "waybill"],
        discrepancies=[],
        matched_at=None,
        agencies={},
        rejection=None,
        documents_first_at=None,
        documents_last_at=None,
        customs_accepted_at=None,
        settled_at=None,
        tax_total=None,
        trade_mode=None,
        port_code=None,
        created_at=now,
        updated_at=now,
    )
    ws.add_record(record)
    ws.event(
        "record_created",
        record_id=record.id,
        detail={"ebpCode": ebp_code, "orderNo": order_no},
    )
    return record, True


def link_waybill(ws: Workspace, waybill: DocumentRow) -> set[uuid.UUID]:
    """Attach a waybill to its record; returns the records whose outcome may have changed.

    A waybill carries only ``orderNo``: with the JSON extension ``ebpCode`` it names its record; else it
    links when exactly one record has that order number, and waits (flagged ambiguous) when several do.
    """
    candidates = ws.records_for_order_no(waybill.order_no)
    if waybill.ebp_code is not None:
        record, created = get_or_create_record(ws, waybill.ebp_code, waybill.order_no)
        changed = _attach(ws, waybill, record)
        if created:
            changed |= settle_waybills(ws, waybill.order_no)
        # The other records of this order number may have been flagged ambiguous while it waited.
        return changed | {r.id for r in candidates}
    if len(candidates) == 1:
        return _attach(ws, waybill, candidates[0])
    return {r.id for r in candidates}


def _attach(ws: Workspace, doc: DocumentRow, record: RecordRow) -> set[uuid.UUID]:
    if doc.record_id == record.id:
        return {record.id}
    changed = {record.id}
    if doc.record_id is not None:
        changed.add(doc.record_id)
        ws.event("document_unlinked", record_id=doc.record_id, document_id=doc.id)
    doc.record_id = record.id
    ws.event(
        "document_linked",
        record_id=record.id,
        document_id=doc.id,
        detail={"documentType": doc.doc_type, "ownerCode": doc.owner_code, "businessNo": doc.business_no},
    )
    return changed


def settle_waybills(ws: Workspace, order_no: str) -> set[uuid.UUID]:
    """A record appeared for this order number: re-link the waybills that carry no ``ebpCode``.

    With one record, waiting waybills link to it. With several, a waybill linked to one of them while it
    was the only candidate becomes ambiguous and waits again (unless that record is frozen), so that the
    outcome does not depend on whether the waybill came before or after the second platform's order.
    """
    records = ws.records_for_order_no(order_no)
    waybills = [w for w in ws.unlinked_waybills(order_no) if w.state != "cancelled"]
    changed: set[uuid.UUID] = set()
    if len(records) == 1:
        for waybill in waybills:
            if waybill.record_id is None:
                changed |= _attach(ws, waybill, records[0])
        return changed
    frozen = {r.id for r in records if r.status in SETTLED_STATUSES}
    for waybill in waybills:
        if waybill.record_id is not None and waybill.record_id not in frozen:
            ws.event(
                "document_unlinked",
                record_id=waybill.record_id,
                document_id=waybill.id,
                detail={"reason": "WAYBILL_AMBIGUOUS"},
            )
            waybill.record_id = None
    return {r.id for r in records}


def record_ids_for_order_no(ws: Workspace, order_no: str) -> set[uuid.UUID]:
    return {r.id for r in ws.records_for_order_no(order_no)}


def target_record(ws: Workspace, doc_type: str, order_no: str, ebp_code: str | None) -> RecordRow | None:
    """The existing record a document with these link fields would join (None: a new one, or none yet)."""
    if ebp_code is not None:
        return ws.record(ebp_code, order_no)
    candidates = ws.records_for_order_no(order_no) if doc_type == "waybill" else []
    return candidates[0] if len(candidates) == 1 else None


def link_document(ws: Workspace, doc: DocumentRow) -> set[uuid.UUID]:
    """Attach an order, payment or waybill to its record (creating it); returns records to re-evaluate."""
    if doc.doc_type == "waybill":
        return link_waybill(ws, doc)
    assert doc.ebp_code is not None
    record, created = get_or_create_record(ws, doc.ebp_code, doc.order_no)
    changed = _attach(ws, doc, record)
    if created:
        changed |= settle_waybills(ws, doc.order_no)
    return changed


def evaluate_records(ws: Workspace, record_ids: Iterable[uuid.UUID]) -> None:
    for record_id in sorted(record_ids):
        record = ws.records.get(record_id)
        if record is not None and record.status not in SETTLED_STATUSES:
            evaluate_record(ws, record)


def evaluate_record(ws: Workspace, record: RecordRow) -> None:
    docs = ws.documents_of(record)
    active = [d for d in docs if d.state == "active"]
    order_rows = [d for d in docs if d.doc_type == "order" and d.state != "cancelled"]
    orders = [d for d in active if d.doc_type == "order"]
    ambiguous: list[WaybillIn] = []
    if not any(d.doc_type == "waybill" for d in active):
        ambiguous = _ambiguous_waybills(ws, record.order_no)
    order: OrderIn | None = ws.parsed(orders[0]) if orders else None
    goods = ws.goods_of(order) if order else {}
    payments: list[PaymentIn] = [ws.parsed(d) for d in active if d.doc_type == "payment"]
    waybills: list[WaybillIn] = [ws.parsed(d) for d in active if d.doc_type == "waybill"]

    outcome = evaluate(
        MatchInput(
            order=order,
            payments=payments,
            waybills=waybills,
            ambiguous_waybills=ambiguous,
            tolerance=ws.settings.amount_tolerance,
            goods=goods_facts(goods) if order else None,
        )
    )
    status = RecordStatus(outcome.status)
    if docs and not active and all(d.state == "cancelled" for d in docs):
        status = RecordStatus.CANCELLED
    arrived = ws.accepted_at or utcnow()
    if record.documents_first_at is None or arrived < record.documents_first_at:
        record.documents_first_at = arrived
    if record.documents_last_at is None or arrived > record.documents_last_at:
        record.documents_last_at = arrived
    if order_rows:
        record.ebc_code = order_rows[0].payload["ebcCode"]
        record.buyer_id_number = order_rows[0].payload["buyerIdNumber"]
    discrepancies = [d.model_dump(mode="json") for d in outcome.discrepancies]
    details_changed = discrepancies != record.discrepancies or outcome.missing != record.missing
    apply_event(
        record, OUTCOME_EVENTS[status], lambda kind, rec, detail: ws.event(kind, record_id=rec.id, detail=detail)
    )
    if details_changed:
        record.discrepancies = discrepancies
        record.missing = outcome.missing
        record.updated_at = utcnow()
    if record.status == "MATCHED" and order is not None:
        # Matched means exactly one active payment and one active waybill (else MULTIPLE_* errors).
        ws.matched.append(MatchedPurchase(record, order, payments[0], waybills[0], goods))


def _ambiguous_waybills(ws: Workspace, order_no: str) -> list[WaybillIn]:
    """Active waybills with this order number that could not pick between several records."""
    waiting = [w for w in ws.unlinked_waybills(order_no) if w.record_id is None and w.state == "active"]
    if not waiting or len(ws.records_for_order_no(order_no)) < 2:
        return []
    return [ws.parsed(d) for d in waiting]
