"""The unit of work's view of the purchases it touches.

Intake locks the order numbers of a request and then loads, in a handful of set queries, every record and
document that carries one of them, the goods records their orders name and the enterprises they need.
Linking and matching then run in memory against this view, which the unit of work keeps current as it adds
and changes rows (plain rows, not ORM objects: app/services/rows.py); ``write`` sends everything before commit
(new rows in one multi-row statement or COPY per table, changed ones by primary key), and the records that
matched are declared together at the end (``app.services.declaration.declare_matched``).

Why this is safe: every write that touches an order number holds that order number's lock (PostgreSQL
advisory lock; on SQLite, BEGIN IMMEDIATE serialises all writers), so nothing loaded here can change under
the transaction — except the agency-side fields of records that are already declared, which intake never
writes. Why it matters: one query per fact per document was ~15 round trips per document; this is a fixed
handful per request, whatever the batch size (docs/performance.md has the figures).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import ORDER_LOCKS, advisory_xact_locks
from app.models import (
    Base,
    Declaration,
    Dispatch,
    Document,
    Goods,
    MatchRecord,
    PrunedPurchase,
    RecordEvent,
    RiskWarning,
)
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.services.bulk_insert import insert_rows
from app.services.rollups import RollupTally
from app.services.rows import DocumentRow, RecordRow, load_rows, select_rows, write_rows
from app.services.timeline import event_row

DocKey = tuple[str, str, str]  # (doc_type, owner_code, business_no)
PAYLOAD_MODELS: dict[str, type[OrderIn] | type[PaymentIn] | type[WaybillIn]] = {
    "order": OrderIn,
    "payment": PaymentIn,
    "waybill": WaybillIn,
}


@dataclass
class MatchedPurchase:
    """A record that matched in this unit of work, with its documents, waiting to be declared."""

    record: RecordRow
    order: OrderIn
    payment: PaymentIn
    waybill: WaybillIn
    goods: dict[str, Goods]


@dataclass
class Workspace:
    session: AsyncSession
    settings: Settings
    actor: str
    # When the submission being applied was accepted (the documents' arrival, for the statistics' clocks).
    accepted_at: datetime | None = None
    order_nos: set[str] = field(default_factory=set)
    records: dict[uuid.UUID, RecordRow] = field(default_factory=dict)
    documents: dict[uuid.UUID, DocumentRow] = field(default_factory=dict)
    by_key: dict[DocKey, DocumentRow] = field(default_factory=dict)
    goods: dict[tuple[str, str], Goods | None] = field(default_factory=dict)
    matched: list[MatchedPurchase] = field(default_factory=list)
    _parsed: dict[tuple[uuid.UUID, int], BaseModel] = field(default_factory=dict)
    _records_by_order: dict[str, list[RecordRow]] = field(default_factory=dict)
    # (ebpCode, orderNo) of the loaded order numbers' purchases pruned by retention (``archived``).
    pruned: set[tuple[str, str]] = field(default_factory=set)
    # Rows nothing in the unit of work reads back, written in one statement per table by ``write``.
    events: list[dict[str, Any]] = field(default_factory=list)
    declarations: list[dict[str, Any]] = field(default_factory=list)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    risk_warnings: list[dict[str, Any]] = field(default_factory=list)
    _docs_by_order: dict[str, list[DocumentRow]] = field(default_factory=dict)
    # The statistics rollups' share of this unit of work, written with the rest by ``write``.
    tally: RollupTally = field(default_factory=RollupTally)

    async def load(self, doc_type: str, keys: Iterable[tuple[str, str]], order_nos: Iterable[str]) -> None:
        """Lock ``order_nos``, lock the stored documents with these natural keys, then lock the order numbers
        those documents carry now (a change may move a document to another order number), and load it all."""
        first = set(order_nos) - self.order_nos
        await advisory_xact_locks(self.session, first, ORDER_LOCKS)
        pairs = sorted(set(keys))
        existing: list[DocumentRow] = []
        if pairs:
            existing = await load_rows(
                self.session,
                DocumentRow,
                select_rows(DocumentRow)
                .where(Document.doc_type == doc_type, tuple_(Document.owner_code, Document.business_no).in_(pairs))
                .with_for_update(),
            )
        moved = {doc.order_no for doc in existing} - self.order_nos - first
        await advisory_xact_locks(self.session, moved, ORDER_LOCKS)
        wanted = sorted(first | moved)
        self.order_nos |= first | moved
        for doc in existing:
            self._keep(doc)
        if not wanted:
            return
        query = select_rows(RecordRow).where(MatchRecord.order_no.in_(wanted))
        for record in await load_rows(self.session, RecordRow, query):
            if record.id not in self.records:
                self.tally.before(record)
                self._keep_record(record)
        query = select_rows(DocumentRow).where(Document.order_no.in_(wanted))
        for doc in await load_rows(self.session, DocumentRow, query):
            self._keep(doc)
        pruned = select(PrunedPurchase.ebp_code, PrunedPurchase.order_no).where(PrunedPurchase.order_no.in_(wanted))
        self.pruned |= {(row[0], row[1]) for row in await self.session.execute(pruned)}

    async def load_goods(self, orders: Iterable[OrderIn]) -> None:
        """The goods records that these orders, and the stored orders in view, name (one query)."""
        pairs = {(o.ebcCode, line.itemNo) for o in orders for line in o.orderList if line.itemNo}
        for doc in self.documents.values():
            if doc.doc_type == "order":
                ebc = str(doc.payload["ebcCode"])
                pairs |= {(ebc, line["itemNo"]) for line in doc.payload.get("orderList", []) if line.get("itemNo")}
        wanted = sorted(pairs - self.goods.keys())
        if not wanted:
            return
        rows = await self.session.scalars(select(Goods).where(tuple_(Goods.ebc_code, Goods.item_no).in_(wanted)))
        for pair in wanted:
            self.goods[pair] = None
        for row in rows:
            self.goods[(row.ebc_code, row.item_no)] = row

    def goods_of(self, order: OrderIn) -> dict[str, Goods]:
        """The filed goods of the order's lines, by item number (all loaded by ``load_goods``)."""
        found: dict[str, Goods] = {}
        for line in order.orderList:
            if line.itemNo:
                goods = self.goods.get((order.ebcCode, line.itemNo))
                if goods is not None:
                    found[line.itemNo] = goods
        return found

    def _keep(self, doc: DocumentRow) -> None:
        if doc.id in self.documents:
            return
        self.documents[doc.id] = doc
        self.by_key[(doc.doc_type, doc.owner_code, doc.business_no)] = doc
        self._docs_by_order.setdefault(doc.order_no, []).append(doc)

    def _keep_record(self, record: RecordRow) -> None:
        if record.id not in self.records:
            self.records[record.id] = record
            self._records_by_order.setdefault(record.order_no, []).append(record)

    # --- lookups over what is loaded ----------------------------------------------------------

    def document(self, doc_type: str, owner_code: str, business_no: str) -> DocumentRow | None:
        return self.by_key.get((doc_type, owner_code, business_no))

    def record(self, ebp_code: str, order_no: str) -> RecordRow | None:
        for record in self._records_by_order.get(order_no, ()):
            if record.ebp_code == ebp_code:
                return record
        return None

    def archived(self, ebp_code: str | None, order_no: str) -> bool:
        """Whether a document naming this purchase belongs to one pruned by retention (docs/storage.md); a
        waybill naming no platform, only when no purchase of its order number is still kept."""
        if ebp_code is not None:
            return (ebp_code, order_no) in self.pruned
        return any(no == order_no for _, no in self.pruned) and not self.records_for_order_no(order_no)

    def records_for_order_no(self, order_no: str) -> list[RecordRow]:
        return list(self._records_by_order.get(order_no, ()))

    def documents_of(self, record: RecordRow) -> list[DocumentRow]:
        # A document linked to a record carries its order number (a change of order number unlinks it).
        return [d for d in self._docs_by_order.get(record.order_no, ()) if d.record_id == record.id]

    def unlinked_waybills(self, order_no: str) -> list[DocumentRow]:
        """Waybills with this order number and no ``ebpCode``: they link by order number alone."""
        return [d for d in self._docs_by_order.get(order_no, ()) if d.doc_type == "waybill" and d.ebp_code is None]

    # --- changes --------------------------------------------------------------------------------

    def event(
        self,
        kind: str,
        *,
        record_id: uuid.UUID | None = None,
        document_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """An audit event (``app.services.timeline.add_event``, written with the rest by ``write``)."""
        self.events.append(event_row(kind, self.actor, record_id=record_id, document_id=document_id, detail=detail))

    async def write(self) -> None:
        """Send everything to the database: the records and documents first (they are referenced, records
        before the documents that point at them), the statistics rollups' changes, then the insert-only rows,
        each table in one multi-row statement, in the order they were made."""
        await write_rows(self.session, list(self.records.values()))
        await write_rows(self.session, list(self.documents.values()))
        await self.tally.write(self.session)
        for model, rows in (
            (Declaration, self.declarations),
            (Dispatch, self.dispatches),
            (RecordEvent, self.events),
            (RiskWarning, self.risk_warnings),
        ):
            await insert_rows(self.session, Base.metadata.tables[model.__tablename__], rows)
            rows.clear()

    def add_record(self, record: RecordRow) -> None:
        self.tally.track_new(record)
        self._keep_record(record)

    def moved(self, doc: DocumentRow, previous_order_no: str) -> None:
        """A change gave the document another order number."""
        if doc.order_no != previous_order_no:
            self._docs_by_order[previous_order_no].remove(doc)
            self._docs_by_order.setdefault(doc.order_no, []).append(doc)

    def add_document(self, doc: DocumentRow, parsed: BaseModel) -> None:
        self._keep(doc)
        self.remember(doc, parsed)

    def remember(self, doc: DocumentRow, parsed: BaseModel) -> None:
        """The validated model of the document's current version (spares parsing the stored payload)."""
        self._parsed[(doc.id, doc.version)] = parsed

    def parsed(self, doc: DocumentRow) -> Any:
        """The document's payload as its wire model (OrderIn, PaymentIn or WaybillIn)."""
        key = (doc.id, doc.version)
        model = self._parsed.get(key)
        if model is None:
            model = self._parsed[key] = PAYLOAD_MODELS[doc.doc_type].model_validate(doc.payload)
        return model
