"""CEB623 / CEB625 through the XML door: each ``InvtCancel`` / ``InvtRefund`` of the message is filed as its
JSON twin would be (the same wire model, the same ``file_request``, one transaction each), and the message is
answered with its CEB624 / CEB626 receipt — ``2`` for a request filed, the refusal's negative code otherwise.

Only the envelope is XML-specific: the XSD, ``BaseTransfer/copCode`` (the caller's own enterprise) and the
sender's signature policy, checked as for a CEB311. The XML fields the single window takes from the inventory
(names, buyer, logistics) were checked by the XSD and are not read again: what customs is sent is ours.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.ceb import codec, return_codes
from app.ceb.after_release import ParsedRequests, parse_requests, render_request_receipts
from app.ceb.codec import MessageRejected, return_time
from app.db import run_in_transaction
from app.errors import DomainError
from app.schemas.after_release import InventoryCancelIn, InventoryReturnIn
from app.services.accept import check_sender
from app.services.after_release import file_request
from app.services.auth import Principal
from app.services.message_signatures import check_signature
from app.services.messages import MessageAnswer
from app.services.request_views import receipt_rows

# The XML fields the wire model reads; the rest of InvtCancel is the inventory's.
_WIRE_FIELDS = (
    "ebpCode", "orderNo", "reason", "guid", "note", "ebcCode", "logisticsCode", "logisticsNo", "buyerIdNumber",
    "invtNo", "agentCode",
)  # fmt: skip


def _wire(parsed: ParsedRequests, record: dict[str, Any]) -> dict[str, Any]:
    data = {name: record[name] for name in _WIRE_FIELDS if name in record}
    if parsed.kind.kind == "return":
        data["invtRefundList"] = [{"gnum": line["gnum"], "qty": line["qty"]} for line in record["invtRefundList"]]
    return data


async def receive_request_message(state: Any, principal: Principal, body: bytes) -> MessageAnswer:
    check_sender(principal)
    try:
        parsed = parse_requests(body)
    except MessageRejected as refusal:
        return MessageAnswer(refusal.http_status, codec.render_message_return(refusal))
    message_type = parsed.kind.message
    cop_code = parsed.transfer.get("copCode", "")
    if cop_code != principal.enterprise_code:
        mismatch = MessageRejected(
            "COP_CODE_MISMATCH",
            f"BaseTransfer/copCode {cop_code} is not the enterprise of this key ({principal.enterprise_code})",
            message_type=message_type,
            message_guid=parsed.guid,
            http_status=403,
        )
        return MessageAnswer(403, codec.render_message_return(mismatch))
    refused = await check_signature(
        state.engine, parsed.signature, cop_code, parsed.records, message_type=message_type, guid=parsed.guid
    )
    if refused is not None:
        return MessageAnswer(refused.http_status, codec.render_message_return(refused))
    model = InventoryCancelIn if parsed.kind.kind == "cancel" else InventoryReturnIn
    rows: list[dict[str, Any]] = []
    stored = rejected = 0
    for record in parsed.records:
        try:
            data = model.model_validate(_wire(parsed, record)).model_dump(exclude_none=True)

            async def work(session: AsyncSession, data: dict[str, Any] = data) -> list[dict[str, Any]]:
                request = await file_request(session, state.settings, principal, parsed.kind.kind, data)
                return receipt_rows(request)

            rows += await run_in_transaction(state.sessionmaker, work, retries=state.settings.max_transaction_retries)
            stored += 1
        except (DomainError, ValidationError) as exc:
            rejected += 1
            rows.append(_refused_row(record, exc))
    return MessageAnswer(200, render_request_receipts(parsed.kind.kind, rows), stored=stored, rejected=rejected)


def _refused_row(record: dict[str, Any], exc: DomainError | ValidationError) -> dict[str, Any]:
    if isinstance(exc, ValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        status = return_codes.record_status("VALIDATION_FAILED", {})
        info = return_codes.return_info("VALIDATION_FAILED", "The request does not follow the schema", problems)
    else:
        status = return_codes.record_status(exc.code, exc.extra)
        info = return_codes.return_info(exc.code, exc.detail)
    return {
        "guid": record.get("guid"),
        **{name: record.get(name) for name in ("customsCode", "agentCode", "ebpCode", "ebcCode", "invtNo")},
        "copNo": record.get("copNo") or str(record.get("guid"))[:20],
        "preNo": record.get("preNo") if len(str(record.get("preNo") or "")) == 18 else "0" * 18,
        "returnStatus": status,
        "returnTime": return_time(),
        "returnInfo": info,
    }
