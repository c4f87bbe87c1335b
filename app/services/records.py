"""Reading match records and documents, with the tenancy rule: an enterprise reads only what it is party to."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.ceb import return_codes
from app.ceb.codec import ReturnRow, render_inventory_receipts, render_receipts, return_time
from app.ceb.kinds import ORDER, PAYMENT, WAYBILL
from app.errors import NotFound, Unprocessable
from app.models import AgencyReceipt, Declaration, Document, InventoryRequest, MatchRecord, RecordEvent, Submission
from app.rules.agency_status import receipt_order
from app.schemas.documents import key_dict
from app.schemas.records import (
    AgencyReceiptOut,
    DeclarationOut,
    DocumentOut,
    DocumentReceiptOut,
    RecordDetail,
    RecordPage,
    RecordSummary,
    TaxView,
    TimelineEvent,
)
from app.services.accept import acceptance_info
from app.services.auth import Principal
from app.services.request_views import request_out


@dataclass(frozen=True)
class RecordFilter:
    status: str | None = None
    ebp_code: str | None = None
    ebc_code: str | None = None
    order_no: str | None = None
    pay_transaction_id: str | None = None
    logistics_no: str | None = None
    buyer_id_number: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_since: datetime | None = None


def party_clause(code: str) -> ColumnElement[bool]:
    """The enterprise is the platform, the seller, or owns/sent a linked payment or waybill."""
    linked = exists().where(
        Document.record_id == MatchRecord.id, or_(Document.owner_code == code, Document.sender_code == code)
    )
    return or_(MatchRecord.ebp_code == code, MatchRecord.ebc_code == code, linked)


def _doc_clause(doc_type: str, business_no: str) -> ColumnElement[bool]:
    return exists().where(
        Document.record_id == MatchRecord.id,
        Document.doc_type == doc_type,
        Document.business_no == business_no,
    )


def _filtered(principal: Principal, f: RecordFilter) -> Select[MatchRecord]:
    query = select(MatchRecord)
    if not principal.reads_everything:
        query = query.where(party_clause(principal.enterprise_code or ""))
    for column, value in (
        (MatchRecord.status, f.status),
        (MatchRecord.ebp_code, f.ebp_code),
        (MatchRecord.ebc_code, f.ebc_code),
        (MatchRecord.order_no, f.order_no),
        (MatchRecord.buyer_id_number, f.buyer_id_number),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.pay_transaction_id is not None:
        query = query.where(_doc_clause("payment", f.pay_transaction_id))
    if f.logistics_no is not None:
        query = query.where(_doc_clause("waybill", f.logistics_no))
    if f.created_from is not None:
        query = query.where(MatchRecord.created_at >= f.created_from)
    if f.created_to is not None:
        query = query.where(MatchRecord.created_at < f.created_to)
    if f.updated_since is not None:
        query = query.where(MatchRecord.updated_at >= f.updated_since)
    return query


def encode_cursor(record: MatchRecord) -> str:
    raw = json.dumps([record.updated_at.isoformat(), str(record.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated, record_id = json.loads(raw)
        moment = datetime.fromisoformat(updated)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(record_id)
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable("The cursor is not one this service issued", code="INVALID_CURSOR") from exc


async def list_records(
    session: AsyncSession,
    principal: Principal,
    f: RecordFilter,
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
) -> RecordPage:
    """Oldest change first, so that polling with ``updatedSince`` or the cursor never skips a record; newest
    first for a person searching (the console), the cursor then leading to older changes."""
    query = _filtered(principal, f)
    position = tuple_(MatchRecord.updated_at, MatchRecord.id)
    if cursor:
        updated, record_id = decode_cursor(cursor)
        after = tuple_(updated, record_id)
        query = query.where(position < after if newest_first else position > after)
    columns = (MatchRecord.updated_at, MatchRecord.id)
    order = [c.desc() for c in columns] if newest_first else list(columns)
    rows = list(await session.scalars(query.order_by(*order).limit(limit + 1)))
    page = rows[:limit]
    return RecordPage(
        items=[summary(r, principal) for r in page],
        nextCursor=encode_cursor(page[-1]) if len(rows) > limit else None,
    )


def sees_whole_purchase(principal: Principal, record: MatchRecord) -> bool:
    """Officials, admins, and the purchase's own platform and seller; not a payment firm or carrier."""
    return principal.reads_everything or principal.enterprise_code in (record.ebp_code, record.ebc_code)


# Timeline events only officials and admins read: which declarations are inspected, and why, is customs' own.
OFFICIALS_ONLY = frozenset({"risk_decision", "risk_warning_handled"})


def mask_id(value: str | None) -> str | None:
    """33010619900101123X → 330106********123X: enough to recognise, not to reuse."""
    if value is None or len(value) <= 10:
        return value
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def _masked_discrepancy(discrepancy: dict[str, Any]) -> dict[str, Any]:
    if not str(discrepancy.get("field", "")).endswith("IdNumber"):
        return discrepancy
    return discrepancy | {
        "expected": mask_id(discrepancy.get("expected")),
        "actual": mask_id(discrepancy.get("actual")),
    }


def summary(record: MatchRecord, principal: Principal) -> RecordSummary:
    """The record as ``principal`` may see it: a payment firm or carrier party to the purchase sees the buyer's
    ID number masked, and a rejection by its code only (the quota text names the buyer)."""
    whole = sees_whole_purchase(principal, record)
    rejection = record.rejection
    if rejection is not None and not whole:
        rejection = {k: rejection.get(k) for k in ("agency", "code", "cebReturnStatus")}
    return RecordSummary(
        id=record.id,
        ebpCode=record.ebp_code,
        orderNo=record.order_no,
        ebcCode=record.ebc_code,
        buyerIdNumber=record.buyer_id_number if whole else mask_id(record.buyer_id_number),
        status=record.status,
        missing=record.missing,
        discrepancies=record.discrepancies if whole else [_masked_discrepancy(d) for d in record.discrepancies],
        createdAt=record.created_at,
        updatedAt=record.updated_at,
        matchedAt=record.matched_at,
        agencies=record.agencies or {},
        rejection=rejection,
    )


def document_out(doc: Document) -> DocumentOut:
    return DocumentOut(
        documentType=doc.doc_type,
        key=key_dict(doc.doc_type, doc.owner_code, doc.business_no),
        state=doc.state,
        version=doc.version,
        recordId=doc.record_id,
        senderCode=doc.sender_code,
        rawMessageId=doc.raw_message_id,
        createdAt=doc.created_at,
        updatedAt=doc.updated_at,
        document=doc.payload,
    )


async def get_record(session: AsyncSession, principal: Principal, record_id: uuid.UUID) -> RecordDetail:
    query = _filtered(principal, RecordFilter()).where(MatchRecord.id == record_id)
    record = await session.scalar(query)
    if record is None:
        raise NotFound(f"No record {record_id}", code="RECORD_NOT_FOUND")
    docs = list(
        await session.scalars(select(Document).where(Document.record_id == record.id).order_by(Document.created_at))
    )
    # A party sees the record; of its documents it sees those it owns or sent — the platform and the
    # seller, who own the purchase, see them all, and the declaration. A carrier linking a waybill learns no
    # buyer ID from it (masked in the summary, and the declaration that carries it is not shown).
    sees_all = sees_whole_purchase(principal, record)
    docs = [d for d in docs if _reads_document(principal, d, record)]
    doc_ids = [d.id for d in docs]
    events = await session.scalars(
        select(RecordEvent)
        .where(or_(RecordEvent.record_id == record.id, RecordEvent.document_id.in_(doc_ids)))
        .order_by(RecordEvent.id)
    )
    declaration = await session.get(Declaration, record.id) if sees_all else None
    receipts = await session.scalars(
        select(AgencyReceipt).where(AgencyReceipt.record_id == record.id).order_by(AgencyReceipt.received_at)
    )
    submissions = await submissions_of(session, docs)
    requests: Iterable[InventoryRequest] = (
        await session.scalars(
            select(InventoryRequest)
            .where(InventoryRequest.record_id == record.id)
            .order_by(InventoryRequest.created_at, InventoryRequest.id)
        )
        if sees_all
        else []
    )
    return RecordDetail(
        **summary(record, principal).model_dump(),
        declaration=(
            DeclarationOut(
                inventory=declaration.inventory,
                tax=TaxView.model_validate(declaration.tax),
                risk=declaration.risk if principal.reads_everything else None,
                createdAt=declaration.created_at,
            )
            if declaration is not None
            else None
        ),
        receipts=[
            AgencyReceiptOut(
                agency=r.agency,
                returnStatus=r.return_status,
                returnInfo=r.return_info,
                source=r.source,
                receivedAt=r.received_at,
            )
            for r in sorted(receipts, key=_happened)
        ],
        documents=[document_out(d) for d in docs],
        documentReceipts=document_receipts(submissions),
        inventoryRequests=[request_out(r) for r in requests],
        timeline=[
            TimelineEvent(at=e.at, kind=e.kind, actor=e.actor, detail=e.detail)
            for e in events
            if (principal.reads_everything or e.kind not in OFFICIALS_ONLY)
            and (sees_all or (e.kind != "declaration_rejected" and (e.document_id is None or e.document_id in doc_ids)))
        ],
    )


async def get_declaration(session: AsyncSession, principal: Principal, record_id: uuid.UUID) -> DeclarationOut:
    record = await session.scalar(_filtered(principal, RecordFilter()).where(MatchRecord.id == record_id))
    visible = record is not None and sees_whole_purchase(principal, record)
    declaration = await session.get(Declaration, record_id) if visible else None
    if declaration is None:
        raise NotFound(f"Record {record_id} has no declaration", code="DECLARATION_NOT_FOUND")
    return DeclarationOut(
        inventory=declaration.inventory,
        tax=TaxView.model_validate(declaration.tax),
        risk=declaration.risk if principal.reads_everything else None,
        createdAt=declaration.created_at,
    )


async def get_document(
    session: AsyncSession, principal: Principal, doc_type: str, owner_code: str, business_no: str
) -> Document:
    doc = await session.scalar(
        select(Document).where(
            Document.doc_type == doc_type,
            Document.owner_code == owner_code,
            Document.business_no == business_no,
        )
    )
    if doc is None or not await _may_read_document(session, principal, doc):
        raise NotFound(f"No {doc_type} {owner_code}/{business_no}", code="DOCUMENT_NOT_FOUND")
    return doc


async def _may_read_document(session: AsyncSession, principal: Principal, doc: Document) -> bool:
    record = await session.get(MatchRecord, doc.record_id) if doc.record_id is not None else None
    return _reads_document(principal, doc, record)


def _reads_document(principal: Principal, doc: Document, record: MatchRecord | None) -> bool:
    """Officials and admins; the document's owner or sender; the platform and seller of its record."""
    if principal.reads_everything:
        return True
    code = principal.enterprise_code
    if code is None:
        return False
    if code in (doc.owner_code, doc.sender_code):
        return True
    return record is not None and code in (record.ebp_code, record.ebc_code)


@dataclass(frozen=True)
class _Answer:
    """One receipt of a submission: its acceptance (2), then its result (120, or 100 with the refusal)."""

    return_status: str
    info: str
    at: datetime
    code: str | None = None
    ceb_return_status: str | None = None


def _answers(row: Submission) -> list[_Answer]:
    answers = [_Answer(return_codes.STORED, acceptance_info(row.guid), row.accepted_at)]
    if row.state == "done" and row.result is not None and row.processed_at is not None:
        if row.outcome == "rejected":
            code = row.result.get("code")
            spec = row.result.get("cebReturnStatus")
            answers.append(
                _Answer(return_codes.REFUSED, str(row.result.get("detail", "")), row.processed_at, code, spec)
            )
        else:
            info = str(row.result.get("returnInfo", ""))
            answers.append(_Answer(return_codes.BUSINESS_STORED, info, row.processed_at))
    return answers


def document_receipts(submissions: list[Submission]) -> list[DocumentReceiptOut]:
    """The receipts of these submissions in the order they happened: each one's acceptance, then its result."""
    receipts = [
        DocumentReceiptOut(
            documentType=row.doc_type,
            key=key_dict(row.doc_type, row.owner_code, row.business_no),
            guid=row.guid,
            submissionSeq=row.seq,
            appType=row.app_type,
            returnStatus=answer.return_status,
            code=answer.code,
            cebReturnStatus=answer.ceb_return_status,
            returnInfo=answer.info,
            at=answer.at,
        )
        for row in submissions
        for answer in _answers(row)
    ]
    return sorted(receipts, key=lambda r: (r.at, r.submissionSeq))


RECEIPT_KINDS = {"order": ORDER, "payment": PAYMENT, "waybill": WAYBILL}
_RECEIPTS_NAMESPACE = uuid.UUID("9b7e8f1c-2a4d-4e61-8c3b-5d0f6a7e9b21")


async def receipts_xml(session: AsyncSession, principal: Principal, record_id: uuid.UUID, kind: str) -> bytes:
    """The record's receipts of one kind, in the order they happened, as their CEB message: CEB312 / 412 / 512
    for a document type (every submission's acceptance, then its result), CEB622 for the inventory (customs'
    answers). Only what the caller may read on the record; the message guid is stable for the same content."""
    record = await session.scalar(_filtered(principal, RecordFilter()).where(MatchRecord.id == record_id))
    if record is None:
        raise NotFound(f"No record {record_id}", code="RECORD_NOT_FOUND")
    if kind == "inventory":
        declaration = await session.get(Declaration, record.id) if sees_whole_purchase(principal, record) else None
        if declaration is None:
            raise NotFound(f"Record {record_id} has no declaration", code="DECLARATION_NOT_FOUND")
        answers = list(
            await session.scalars(
                select(AgencyReceipt)
                .where(AgencyReceipt.record_id == record.id, AgencyReceipt.agency == "customs")
                .order_by(AgencyReceipt.received_at, AgencyReceipt.id)
            )
        )
        inventory = declaration.inventory
        rows = [
            {
                **{name: inventory.get(name) for name in ("guid", "customsCode", "ebpCode", "ebcCode", "agentCode")},
                "copNo": inventory.get("copNo"),
                # The pre-entry number is customs' to give; until a receipt carries one, the record's own.
                "preNo": str(answer.payload.get("preNo") or record.id.hex[:18].upper()),
                "invtNo": answer.payload.get("invtNo"),
                "returnStatus": answer.return_status,
                "returnTime": _agency_time(answer),
                "returnInfo": answer.return_info,
            }
            # In the order customs gave them: a synchronous reply may be recorded after the callback that followed.
            for answer in sorted(answers, key=_happened)
        ]
        rows = _receipt_window(rows, record_id, kind)
        guid = uuid.uuid5(_RECEIPTS_NAMESPACE, f"{record.id}:inventory:{len(rows)}")
        return render_inventory_receipts(rows, guid=str(guid).upper())
    message_kind = RECEIPT_KINDS[kind]
    query = select(Document).where(Document.record_id == record.id, Document.doc_type == kind)
    docs = [d for d in await session.scalars(query) if _reads_document(principal, d, record)]
    submissions = await submissions_of(session, docs)
    return_rows: list[ReturnRow] = []
    for row in submissions:
        keys = {name: str(row.payload.get(name) or "") for name in message_kind.receipt_keys}
        for answer in _answers(row):
            status, info = answer.return_status, answer.info
            if status == return_codes.REFUSED:  # in CEB XML: the refusal's negative code, and the code in returnInfo
                code = str(answer.code)
                status = return_codes.record_status(code, {"cebReturnStatus": answer.ceb_return_status})
                info = return_codes.return_info(code, answer.info)
            return_rows.append(ReturnRow(row.guid, keys, status, info, answer.at))
    return_rows.sort(key=lambda r: r.at or record.created_at)
    return_rows = _receipt_window(return_rows, record_id, kind)
    guid = uuid.uuid5(_RECEIPTS_NAMESPACE, f"{record.id}:{kind}:{len(return_rows)}")
    return render_receipts(message_kind, return_rows, guid=str(guid).upper())


RECEIPTS_PER_MESSAGE = 100  # a receipt message holds 1..100 …Return (our XSDs, as the official ones)

_Row = TypeVar("_Row")


def _receipt_window(rows: list[_Row], record_id: uuid.UUID, kind: str) -> list[_Row]:
    """The receipts one message can carry: none is no message at all (404), and of more than a hundred the
    latest hundred (the record's JSON ``documentReceipts`` has every one)."""
    if not rows:
        raise NotFound(f"Record {record_id} has no {kind} receipts this key may read", code="RECEIPTS_NOT_FOUND")
    return rows[-RECEIPTS_PER_MESSAGE:]


async def submissions_of(session: AsyncSession, docs: list[Document]) -> list[Submission]:
    """Every submission of these documents' natural keys, in acceptance order."""
    if not docs:
        return []
    keys = [(d.doc_type, d.owner_code, d.business_no) for d in docs]
    query = select(Submission).where(
        tuple_(Submission.doc_type, Submission.owner_code, Submission.business_no).in_(keys)
    )
    return list(await session.scalars(query.order_by(Submission.seq)))


def _happened(answer: AgencyReceipt) -> tuple[str, int, int]:
    return receipt_order(_agency_time(answer), answer.return_status)


def _agency_time(answer: AgencyReceipt) -> str:
    """When the agency answered (its C17 returnTime), or when we received the answer if it gave none."""
    given = answer.payload.get("returnTime")
    return given if isinstance(given, str) and len(given) == 17 and given.isdigit() else return_time(answer.received_at)
