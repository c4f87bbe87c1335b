"""Intake: one path for every document, JSON or XML, single or batch.

Reading and validating a request's documents happen on the request path, before accepting them
(app/services/accept.py). Applying an accepted document to the stored documents and records — what a new
version, a change or a cancellation does, linking and matching — is the match stage's work
(app/services/match_stage.py), through ``apply_submission`` here, against the stage's ``Workspace``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from app.db import utcnow
from app.errors import (
    Conflict,
    DomainError,
    MalformedBody,
    NotFound,
    Unprocessable,
    UnsupportedMediaType,
    validation_errors,
)
from app.models import Document, MatchRecord
from app.schemas.ceb_types import CHINA_TZ
from app.schemas.documents import (
    MODEL_BY_TYPE,
    AnyDocument,
    OrderIn,
    PaymentIn,
    WaybillIn,
    key_dict,
    natural_key,
)
from app.schemas.records import Receipt
from app.services.matching import (
    SETTLED_STATUSES,
    evaluate_records,
    link_document,
    record_ids_for_order_no,
    target_record,
)
from app.services.rows import DocumentRow, RecordRow
from app.services.workspace import Workspace

DocType = Literal["order", "payment", "waybill"]
TRANSPORT_FIELDS = frozenset({"guid", "appType", "appTime"})

# The spec's negative receipt codes (ceb-messages.md §3.2) for each rejection, per document type.
SPEC_CODES: dict[tuple[str, str], str] = {
    ("DUPLICATE_DIFFERENT_CONTENT", "order"): "-301010",
    ("DUPLICATE_DIFFERENT_CONTENT", "payment"): "-401007",
    ("DUPLICATE_DIFFERENT_CONTENT", "waybill"): "-504012",
    ("DOCUMENT_NOT_FOUND", "order"): "-301009",
    ("RECORD_ALREADY_DECLARED", "order"): "-301011",
    ("RECORD_ALREADY_DECLARED", "payment"): "-401008",
    ("STALE_MESSAGE", "order"): "-301014",
    ("STALE_MESSAGE", "payment"): "-401012",
}

# Which enterprise codes a document names, the role each must have, and which one owns the document.
NAMED_CODES: dict[str, tuple[tuple[str, str], ...]] = {
    "order": (("ebpCode", "platform"), ("ebcCode", "seller"), ("payCode", "payment")),
    "payment": (("payCode", "payment"), ("ebpCode", "platform")),
    "waybill": (("logisticsCode", "logistics"), ("ebpCode", "platform")),
}
OWNER_FIELD = {"order": "ebpCode", "payment": "payCode", "waybill": "logisticsCode"}
RETURN_INFO = {"1": "新增申报成功", "2": "变更申报成功", "3": "删除申报成功"}


@dataclass(frozen=True)
class RawBody:
    body: bytes
    content_type: str


@dataclass(frozen=True)
class IntakeItem:
    """One document of a request: validated, or the reason it is not valid."""

    index: int
    document: AnyDocument | None = None
    error: DomainError | None = None


@dataclass
class ItemResult:
    index: int
    status: int
    receipt: Receipt | None = None
    error: DomainError | None = None
    seq: int | None = None  # the accepted submission whose business result answers this item
    answered_at: datetime | None = None  # when the match stage gave the business result (None: not yet, or now)

    @property
    def replayed(self) -> bool:
        return self.receipt is not None and self.receipt.replayed


@dataclass(frozen=True)
class Sender:
    """Who sent an accepted document, and in which raw message."""

    doc_type: DocType
    enterprise_code: str
    raw_message_id: uuid.UUID


@dataclass(frozen=True)
class Accepted:
    """An accepted document as the match stage reads it: the model, and what accepting already worked out
    (its content hash and its stored form), so that they are not computed twice."""

    document: AnyDocument
    content_sha256: str
    payload: dict[str, Any]


# --- parsing and validation (no database) -----------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Objects and arrays one document may hold: a head, its list and up to ~1,000 lines. Counted on the raw bytes
# before parsing, because parsing is what costs: a 6 MB body of 3,000,000 empty objects takes seconds and
# 600 MiB to build, while no real document comes near this (braces inside strings only make the count high).
MAX_CONTAINERS_PER_DOCUMENT = 2_000
MAX_VALUES_PER_DOCUMENT = 20_000  # the same for values (commas): ~40 in a head, ~15 per line


def parse_json(body: bytes, max_containers: int | None = None) -> Any:
    """JSON with every number read as an exact Decimal (never through float); with ``max_containers``, a body
    holding more objects and arrays than that is refused unparsed (400 TOO_MANY_OBJECTS)."""
    if max_containers is not None and (
        body.count(b"{") + body.count(b"[") > max_containers
        or body.count(b",") > max_containers * (MAX_VALUES_PER_DOCUMENT // MAX_CONTAINERS_PER_DOCUMENT)
    ):
        raise MalformedBody(
            "The body holds more JSON objects, arrays or values than its documents could; it was not parsed",
            code="TOO_MANY_OBJECTS",
        )
    try:
        text = body.decode("utf-8-sig")
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise MalformedBody("The body is not UTF-8 text") from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}") from exc


def read_json_body(body: bytes, content_type: str | None, documents: int = 1) -> tuple[Any, RawBody]:
    """A JSON request body of at most ``documents`` documents (415 for another media type, 400 for bad JSON,
    or for far too many objects) and the raw body to keep."""
    content_type = content_type or "application/json"
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"Send JSON (application/json); for CEB XML use POST /api/v1/messages — got {media}",
        )
    return parse_json(body, documents * MAX_CONTAINERS_PER_DOCUMENT), RawBody(body=body, content_type=content_type)


# A CEB document head has about 40 fields and an order line 15. Far more members are an attack or a bug, and
# validating them would cost a second and hundreds of MiB for a body of 600,000 unknown keys (one error each).
MAX_MEMBERS = 200


def _crowded_object(data: Any, path_prefix: tuple[Any, ...]) -> str | None:
    """The path of the first object (the document or one of its lines) with more than ``MAX_MEMBERS`` members."""
    pending: list[tuple[Any, tuple[Any, ...]]] = [(data, path_prefix)]
    while pending:
        value, path = pending.pop()
        if isinstance(value, dict):
            if len(value) > MAX_MEMBERS:
                return "/".join(map(str, path))
            pending.extend((v, (*path, k)) for k, v in value.items() if isinstance(v, dict | list))
        elif isinstance(value, list):
            pending.extend((v, (*path, i)) for i, v in enumerate(value) if isinstance(v, dict | list))
    return None


def validate_document(doc_type: DocType, data: Any, path_prefix: tuple[Any, ...] = ()) -> AnyDocument:
    if not isinstance(data, dict):
        raise Unprocessable(
            "A document must be a JSON object",
            errors=[
                {
                    "path": "/".join(map(str, path_prefix)),
                    "message": "expected an object",
                    "type": "dict_type",
                }
            ],
        )
    crowded = _crowded_object(data, path_prefix)
    if crowded is not None:
        raise Unprocessable(
            f"An object of the {doc_type} has more than {MAX_MEMBERS} members",
            code="TOO_MANY_MEMBERS",
            errors=[{"path": crowded, "message": f"more than {MAX_MEMBERS} members", "type": "too_many_members"}],
        )
    if data.get("guid") is None or data.get("appTime") is None:
        data = data | _defaults(data)  # filled before validation: cheaper than a model_copy after it
    try:
        document = MODEL_BY_TYPE[doc_type].model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(
            f"The {doc_type} is not valid: {exc.error_count()} problem(s)",
            errors=validation_errors(exc.errors(include_url=False, include_input=False), path_prefix),
        ) from exc
    return document


def _defaults(data: dict[str, Any]) -> dict[str, str]:
    """guid and appTime for a document that has none."""
    update: dict[str, str] = {}
    if data.get("guid") is None:
        update["guid"] = str(uuid.uuid4()).upper()
    if data.get("appTime") is None:
        # CEB times are China wall-clock time.
        update["appTime"] = datetime.now(UTC).astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S")
    return update


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 10.50 and 10.5 are the same amount
    raise TypeError(f"{type(value).__name__} in a document")


def content_hash(document: AnyDocument) -> str:
    """The business content: transport fields (guid, appType, appTime) and number spelling do not count."""
    data = document.model_dump(exclude=set(TRANSPORT_FIELDS), exclude_none=True)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_decimal_text)
    return hashlib.sha256(canonical.encode()).hexdigest()


def spec_error(error_cls: type[DomainError], code: str, doc_type: str, detail: str, **extra: Any) -> DomainError:
    spec = SPEC_CODES.get((code, doc_type))
    if spec is not None:
        extra["cebReturnStatus"] = spec
    return error_cls(detail, code=code, **extra)


Action = Literal["create", "update", "cancel", "replay"]


def decide_action(
    doc_type: str,
    document: AnyDocument,
    existing: DocumentRow | None,
    same_content: bool,
    record_frozen: bool,
) -> Action:
    """What a submission does to the stored document (appType 1 new, 2 change, 3 delete)."""
    app_type = document.appType
    if existing is None:
        if app_type == "1" and record_frozen:
            raise spec_error(
                Conflict,
                "RECORD_ALREADY_DECLARED",
                doc_type,
                "The purchase is already declared; no further document can join it",
            )
        if app_type == "1":
            return "create"
        raise spec_error(
            NotFound,
            "DOCUMENT_NOT_FOUND",
            doc_type,
            f"No {doc_type} with this key to {'change' if app_type == '2' else 'cancel'}; send it with appType 1",
        )
    if app_type == "3" and existing.state == "cancelled":
        return "replay"
    if same_content and app_type != "3" and existing.state != "cancelled":
        return "replay"
    # What is wrong with the message itself comes before what the record's state forbids.
    if app_type == "1" and existing.state == "active":
        raise spec_error(
            Conflict,
            "DUPLICATE_DIFFERENT_CONTENT",
            doc_type,
            f"A {doc_type} with this key is already stored with other content; send changes with appType 2",
        )
    if app_type == "2" and existing.state == "cancelled":
        raise Conflict(f"The {doc_type} was cancelled; send it again with appType 1", code="DOCUMENT_CANCELLED")
    if app_type != "1" and document.appTime is not None and document.appTime < existing.app_time:
        raise spec_error(Conflict, "STALE_MESSAGE", doc_type, "This message is older than the stored version; ignored")
    if record_frozen:
        raise spec_error(
            Conflict,
            "RECORD_ALREADY_DECLARED",
            doc_type,
            "The record is already declared; the document can no longer change",
        )
    if app_type == "3":
        return "cancel"
    return "update"  # a change; or appType 1 declaring a draft, or sending again after a cancellation


def apply_submission(ws: Workspace, sender: Sender, index: int, accepted: Accepted) -> ItemResult:
    """What an accepted document does to the stored documents and records; its business result."""
    document = accepted.document
    owner, business_no = natural_key(document)
    existing = ws.document(sender.doc_type, owner, business_no)
    if existing is None and ws.archived(document.ebpCode, document.orderNo):
        # Its purchase was final and pruned: taking the document as new would start a second purchase and
        # declare it again (docs/storage.md, "Retention of purchases").
        raise spec_error(
            Conflict,
            "PURCHASE_ARCHIVED",
            sender.doc_type,
            "The purchase was completed and its records archived; no document of it is accepted again",
        )
    digest = accepted.content_sha256
    frozen = False
    if existing is not None and existing.record_id is not None:
        record = ws.records.get(existing.record_id)
        frozen = record is not None and record.status in SETTLED_STATUSES
    if not frozen and document.appType != "3":
        # A new document, or a change that moves it, must not join a record that is already declared.
        target = target_record(ws, sender.doc_type, document.orderNo, document.ebpCode)
        frozen = target is not None and target.status in SETTLED_STATUSES
    action = decide_action(
        sender.doc_type, document, existing, existing is not None and existing.content_sha256 == digest, frozen
    )
    if action == "replay":
        assert existing is not None
        return ItemResult(index, 200, receipt=build_receipt(ws, existing, replayed=True))

    raw_id = sender.raw_message_id
    changed: set[uuid.UUID] = set()
    if action == "create":
        now = utcnow()
        doc = DocumentRow(
            id=uuid.uuid4(),
            doc_type=sender.doc_type,
            owner_code=owner,
            business_no=business_no,
            order_no=document.orderNo,
            ebp_code=document.ebpCode,
            state="active",
            version=0,
            app_type=document.appType,
            guid="",
            app_time="",
            content_sha256=digest,
            payload=accepted.payload,
            sender_code=sender.enterprise_code,
            raw_message_id=raw_id,
            record_id=None,
            created_at=now,
            updated_at=now,
        )
        _apply(doc, accepted, sender)
        ws.add_document(doc, document)
    else:
        assert existing is not None
        doc = existing
        if doc.doc_type == "waybill" and doc.record_id is None:
            # A waiting waybill may have flagged several records ambiguous; they are evaluated again.
            changed |= record_ids_for_order_no(ws, doc.order_no)
        if action == "cancel":
            doc.state, doc.version, doc.app_type, doc.guid = (
                "cancelled",
                doc.version + 1,
                "3",
                document.guid or doc.guid,
            )
            doc.raw_message_id, doc.sender_code, doc.updated_at = (
                raw_id,
                sender.enterprise_code,
                utcnow(),
            )
        else:
            previous_link = (doc.order_no, doc.ebp_code)
            _apply(doc, accepted, sender)
            ws.moved(doc, previous_link[0])
            ws.remember(doc, document)
            if (doc.order_no, doc.ebp_code) != previous_link and doc.record_id is not None:
                changed.add(doc.record_id)
                ws.event("document_unlinked", record_id=doc.record_id, document_id=doc.id)
                doc.record_id = None
    kind = {"create": "document_received", "update": "document_modified", "cancel": "document_cancelled"}[action]
    ws.event(
        kind,
        record_id=doc.record_id,
        document_id=doc.id,
        detail={
            "documentType": sender.doc_type,
            "key": key_dict(sender.doc_type, owner, business_no),
            "version": doc.version,
            "appType": document.appType,
            "appStatus": document.appStatus,
            "guid": doc.guid,
            "rawMessageId": str(raw_id),
            "itemIndex": index,
            "sender": sender.enterprise_code,
        },
    )
    if action != "cancel":
        changed |= link_document(ws, doc)
    elif doc.record_id is not None:
        changed.add(doc.record_id)
    evaluate_records(ws, changed)
    return ItemResult(index, 201 if action == "create" else 200, receipt=build_receipt(ws, doc, replayed=False))


def _apply(doc: DocumentRow, accepted: Accepted, sender: Sender) -> None:
    document = accepted.document
    doc.version += 1
    doc.state = "draft" if document.appStatus == "1" else "active"
    doc.app_type = document.appType
    doc.guid = document.guid or ""
    doc.app_time = document.appTime or ""
    doc.content_sha256 = accepted.content_sha256
    doc.payload = accepted.payload
    doc.order_no = document.orderNo
    doc.ebp_code = document.ebpCode
    doc.sender_code = sender.enterprise_code
    doc.raw_message_id = sender.raw_message_id
    doc.updated_at = utcnow()


def build_receipt(ws: Workspace, doc: DocumentRow, *, replayed: bool) -> Receipt:
    """The receipt of the document as it is now (a snapshot: later items of a batch do not change it)."""
    return receipt_of(doc, ws.records.get(doc.record_id) if doc.record_id else None, replayed=replayed)


def receipt_of(doc: Document | DocumentRow, record: MatchRecord | RecordRow | None, *, replayed: bool) -> Receipt:
    """The business receipt (120) of a stored document and its record."""
    return Receipt(
        returnStatus="120",
        returnInfo=f"{RETURN_INFO.get(doc.app_type, RETURN_INFO['1'])}[{doc.guid}]",
        documentType=doc.doc_type,
        key=key_dict(doc.doc_type, doc.owner_code, doc.business_no),
        guid=doc.guid,
        version=doc.version,
        state=doc.state,
        replayed=replayed,
        recordId=record.id if record else None,
        recordStatus=record.status if record else None,
        missing=list(record.missing) if record else [],
        discrepancies=list(record.discrepancies) if record else [],
    )


def settle_receipt(ws: Workspace, result: ItemResult) -> ItemResult:
    receipt = result.receipt
    if receipt is None or receipt.recordStatus != "MATCHED" or receipt.recordId is None:
        return result
    result.receipt = receipt.model_copy(update={"recordStatus": ws.records[receipt.recordId].status})
    return result


__all__ = [
    "IntakeItem",
    "ItemResult",
    "OrderIn",
    "PaymentIn",
    "RawBody",
    "Sender",
    "WaybillIn",
    "apply_submission",
    "parse_json",
    "validate_document",
]
