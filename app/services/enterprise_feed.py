"""The feed as an enterprise sees it: the events of records it is party to, masked as its role sees records
(app/rules/feed_audience.py), in feed order; as JSON, or each receipt-carrying event as its CEB message."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ceb import return_codes
from app.ceb.after_release import render_request_receipts
from app.ceb.codec import ReturnRow, render_inventory_receipts, render_receipts
from app.lifecycle.feed import FeedEvent, FeedPosition, read_feed
from app.models import AgencyReceipt, Declaration, Document, InventoryRequest, MatchRecord, RecordEvent
from app.rules.feed_audience import (
    DocumentParties,
    RecordParties,
    View,
    detail_for,
    refused_document_parties,
    view_of,
)
from app.services.records import RECEIPT_KINDS, party_clause
from app.services.request_views import receipt_rows

_MESSAGE_NAMESPACE = uuid.UUID("0d7f5c2e-8b1a-4c3d-9e6f-2a1b3c4d5e6f")


def party_events(code: str) -> ColumnElement[bool]:
    """The events enterprise ``code`` may be shown at all: of records it is party to, of documents it owns or
    sent, and the receipts of documents it sent that were refused before they were stored. ``view_of`` then
    decides which of these, and how much of each."""
    own_documents = select(Document.id).where(or_(Document.owner_code == code, Document.sender_code == code))
    party_records = select(MatchRecord.id).where(party_clause(code))
    refused_receipt = and_(
        RecordEvent.document_id.is_(None),
        RecordEvent.record_id.is_(None),
        RecordEvent.detail["sender"].as_string() == code,
    )
    return or_(RecordEvent.document_id.in_(own_documents), RecordEvent.record_id.in_(party_records), refused_receipt)


@dataclass(frozen=True)
class Audience:
    """The parties of the records and documents a batch of events is about, loaded once for the batch."""

    records: dict[uuid.UUID, RecordParties]
    documents: dict[uuid.UUID, DocumentParties]

    def view(self, code: str, event: FeedEvent) -> View | None:
        record = self.records.get(event.record_id) if event.record_id is not None else None
        if event.document_id is not None:
            document = self.documents.get(event.document_id)
        elif event.kind == "document_receipt" and event.record_id is None:
            document = refused_document_parties(event.detail)
        else:
            document = None
        return view_of(code, event.kind, record, document)


async def audience_of(session: AsyncSession, events: Sequence[FeedEvent]) -> Audience:
    record_ids = {e.record_id for e in events if e.record_id is not None}
    document_ids = {e.document_id for e in events if e.document_id is not None}
    linked: dict[uuid.UUID, set[str]] = {r: set() for r in record_ids}
    documents: dict[uuid.UUID, DocumentParties] = {}
    if record_ids or document_ids:
        rows = await session.execute(
            select(Document.id, Document.record_id, Document.owner_code, Document.sender_code).where(
                or_(Document.record_id.in_(record_ids), Document.id.in_(document_ids))
            )
        )
        for doc_id, record_id, owner, sender in rows:
            documents[doc_id] = DocumentParties(owner, sender)
            if record_id in linked:
                linked[record_id] |= {owner, sender}
    records: dict[uuid.UUID, RecordParties] = {}
    if record_ids:
        rows_ = await session.execute(
            select(MatchRecord.id, MatchRecord.ebp_code, MatchRecord.ebc_code).where(MatchRecord.id.in_(record_ids))
        )
        for record_id, ebp, ebc in rows_:
            records[record_id] = RecordParties(ebp, ebc, frozenset(linked.get(record_id, ())))
    return Audience(records, documents)


@dataclass(frozen=True)
class ShownEvent:
    event: FeedEvent
    view: View
    detail: dict[str, Any]


async def read_enterprise_feed(
    session: AsyncSession, code: str, after: FeedPosition, limit: int
) -> tuple[list[ShownEvent], FeedPosition]:
    """The enterprise's events after ``after`` and the cursor to read on from (past events read but not shown,
    so that a page of hidden events still moves the reader on)."""
    events = await read_feed(session, after, limit, only=party_events(code))
    audience = await audience_of(session, events)
    shown = []
    for event in events:
        view = audience.view(code, event)
        if view is not None:
            shown.append(ShownEvent(event, view, detail_for(view, event.detail)))
    return shown, (events[-1].position if events else after)


async def _inventory_number(session: AsyncSession, record_id: uuid.UUID) -> str | None:
    """The invtNo customs gave the record's inventory, from its stored answers (for events recorded before
    the event detail carried it)."""
    payloads = await session.scalars(
        select(AgencyReceipt.payload).where(AgencyReceipt.record_id == record_id, AgencyReceipt.agency == "customs")
    )
    return next((str(p["invtNo"]) for p in payloads if isinstance(p, dict) and p.get("invtNo")), None)


async def receipt_message(session: AsyncSession, shown: ShownEvent) -> bytes | None:
    """The CEB receipt an event carries, as its message — CEB312 / 412 / 512 for a document's 120 or 100,
    CEB622 for customs' receipt of the inventory (to the purchase's platform and seller only) — or None.
    The message guid is derived from the event, so the same event is always the same bytes."""
    event = shown.event
    guid = str(uuid.uuid5(_MESSAGE_NAMESPACE, event.position.cursor())).upper()
    if event.kind == "document_receipt":
        kind = RECEIPT_KINDS.get(str(event.detail.get("documentType")))
        if kind is None:
            return None
        document = await session.get(Document, event.document_id) if event.document_id is not None else None
        fields = (document.payload if document is not None else {}) | dict(event.detail.get("key") or {})
        keys = {name: str(fields.get(name) or "") for name in kind.receipt_keys}
        status, info = str(event.detail.get("returnStatus")), str(event.detail.get("returnInfo") or "")
        if status == return_codes.REFUSED:
            code = str(event.detail.get("code"))
            status = return_codes.record_status(code, {"cebReturnStatus": event.detail.get("cebReturnStatus")})
            info = return_codes.return_info(code, info)
        row = ReturnRow(str(event.detail.get("guid") or guid), keys, status, info, event.at)
        return render_receipts(kind, [row], guid=guid)
    if event.kind == "agency_receipt" and event.detail.get("requestId") and shown.view == "whole":
        return await _request_receipt_message(session, event.detail, event.at, guid)
    if event.kind == "agency_receipt" and event.detail.get("agency") == "customs" and shown.view == "whole":
        declaration = await session.get(Declaration, event.record_id) if event.record_id is not None else None
        if declaration is None or event.record_id is None:
            return None
        inventory = declaration.inventory
        row_ = {
            **{name: inventory.get(name) for name in ("guid", "customsCode", "ebpCode", "ebcCode", "agentCode")},
            "copNo": inventory.get("copNo"),
            "preNo": event.record_id.hex[:18].upper(),
            "invtNo": event.detail.get("invtNo") or await _inventory_number(session, event.record_id),
            "returnStatus": event.detail.get("returnStatus"),
            "returnTime": event.at,
            "returnInfo": event.detail.get("returnInfo"),
        }
        return render_inventory_receipts([row_], guid=guid)
    return None


async def _request_receipt_message(
    session: AsyncSession, detail: Mapping[str, Any], at: datetime, guid: str
) -> bytes | None:
    """Customs' answer to a cancel or return (CEB624 / CEB626), one ``…Return``."""
    try:
        request = await session.get(InventoryRequest, uuid.UUID(str(detail["requestId"])))
    except ValueError:
        return None
    if request is None:
        return None
    row = receipt_rows(request)[0] | {
        "returnStatus": detail.get("returnStatus"),
        "returnTime": at,
        "returnInfo": detail.get("returnInfo"),
    }
    return render_request_receipts(request.kind, [row], guid=guid)  # type: ignore[arg-type]
