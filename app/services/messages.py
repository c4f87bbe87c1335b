"""CEB XML through the one intake path: a CEB311/411/511 message in, its CEB312/412/512 receipt out.

Each record of the message becomes one item of ``submit`` — the same validation, filing and
authority checks, idempotency, storage of the raw body, matching and audit as a JSON batch — so the two
formats cannot drift apart. Only the envelope is XML-specific: the XSD, and ``BaseTransfer/copCode``,
which must be the caller's own enterprise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.ext.asyncio import AsyncSession

from app.ceb import codec, return_codes
from app.ceb.codec import MessageRejected, ParsedMessage, ReturnRow
from app.ceb.kinds import DocType
from app.errors import DomainError
from app.models import Document, Enterprise
from app.services.accept import check_sender
from app.services.auth import Principal
from app.services.intake import IntakeItem, ItemResult, RawBody, validate_document
from app.services.message_signatures import check_message_signature
from app.services.submitting import submit

# Bodies up to this size are read on the event loop (a single-order message takes ~0.1 ms); larger ones in
# a worker thread, so that a 100-record message or a hostile body never stalls other requests.
INLINE_PARSE_BYTES = 64 * 1024
_RENDER_NAMESPACE = uuid.UUID("6f1d1c52-3b0e-4c55-9a57-2f3a3c1d0b11")


@dataclass(frozen=True)
class MessageAnswer:
    http_status: int
    body: bytes
    stored: int = 0
    replayed: int = 0
    rejected: int = 0


def read_message(body: bytes) -> tuple[ParsedMessage, list[IntakeItem]]:
    """Parse, check against the XSD and validate every record (CPU only, no I/O)."""
    message = codec.parse_message(body)
    items = []
    for index, record in enumerate(message.records):
        try:
            items.append(IntakeItem(index, document=validate_document(message.kind.doc_type, record)))
        except DomainError as error:
            items.append(IntakeItem(index, error=error))
    return message, items


async def receive_message(
    state: Any, principal: Principal, body: bytes, content_type: str, wait: int | None = None
) -> MessageAnswer:
    """``state``: the app's state (see ``app.services.submitting.submit``)."""
    check_sender(principal)
    try:
        if len(body) <= INLINE_PARSE_BYTES:
            message, items = read_message(body)
        else:
            message, items = await run_in_threadpool(read_message, body)
    except MessageRejected as rejected:
        return MessageAnswer(rejected.http_status, codec.render_message_return(rejected))
    cop_code = message.transfer.get("copCode", "")
    if cop_code != principal.enterprise_code:
        mismatch = MessageRejected(
            "COP_CODE_MISMATCH",
            f"BaseTransfer/copCode {cop_code} is not the enterprise of this key ({principal.enterprise_code}); "
            "transmit for other enterprises through a delegation, with your own copCode",
            message_type=message.kind.message,
            message_guid=message.guid,
            http_status=403,
        )
        return MessageAnswer(403, codec.render_message_return(mismatch))
    refused = await check_message_signature(state.engine, message, cop_code)
    if refused is not None:
        return MessageAnswer(refused.http_status, codec.render_message_return(refused))
    raw = RawBody(body=body, content_type=content_type)
    results = await submit(state, principal, message.kind.doc_type, items, raw, wait)
    rows = [_return_row(message, item, result) for item, result in zip(items, results, strict=True)]
    return MessageAnswer(
        200,
        codec.render_receipts(message.kind, rows),
        stored=sum(1 for r in results if r.receipt is not None and not r.replayed),
        replayed=sum(1 for r in results if r.replayed),
        rejected=sum(1 for r in results if r.error is not None),
    )


def _return_row(message: ParsedMessage, item: IntakeItem, result: ItemResult) -> ReturnRow:
    """What the receipt says of one record. Every echoed value fits the receipt's facets: the keys are the
    record's values, whose raw length the XSD checked against the same limits; the guid is the document's, or
    for a record whose guid the wire model refused, the guid exactly as written (36 raw characters, by the XSD).
    ``returnTime`` is when the answer was given — the acceptance's time, kept, so a replay answers the same."""
    assert item.index == result.index
    record = message.records[item.index]
    source = item.document.model_dump() if item.document is not None else record
    keys = {name: str(source.get(name) or record.get(name) or "") for name in message.kind.receipt_keys}
    guid = item.document.guid if item.document is not None else None
    guid = guid or message.raw_guids[item.index]
    if result.receipt is not None:
        at = result.answered_at or result.receipt.acceptedAt
        return ReturnRow(guid, keys, result.receipt.returnStatus, result.receipt.returnInfo, at)
    assert result.error is not None
    error = result.error
    problems = [f"{e.get('path')}: {e.get('message')}" for e in error.extra.get("errors") or [] if isinstance(e, dict)]
    return ReturnRow(
        guid,
        keys,
        return_codes.record_status(error.code, error.extra),
        return_codes.return_info(error.code, error.detail, problems),
        result.answered_at,
    )


async def render_document(session: AsyncSession, doc: Document) -> bytes:
    """The stored document as its CEB311/411/511 message (one record).

    ``BaseTransfer`` names the enterprise that sent the stored version (the single window keeps no DXP id,
    so ``dxpId`` is that enterprise's code). The waybill extension ``ebpCode`` has no CEB511 field and is
    left out. The message guid is derived from the document and its version, so it is stable across reads.
    """
    sender = await session.get(Enterprise, doc.sender_code)
    document = dict(doc.payload)
    document["guid"] = doc.guid or document.get("guid")
    document["appType"] = doc.app_type or document.get("appType")
    transfer = {
        "copCode": doc.sender_code,
        "copName": sender.name if sender is not None else doc.sender_code,
        "dxpMode": "DXP",
        "dxpId": doc.sender_code,
    }
    guid = str(uuid.uuid5(_RENDER_NAMESPACE, f"{doc.id}:{doc.version}")).upper()
    return codec.render_message(cast(DocType, doc.doc_type), [document], transfer, guid=guid)
