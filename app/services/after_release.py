"""Filing a cancel (撤销, CEB623) or a return (退货, CEB625) of a declared inventory, from JSON or CEB XML.

One transaction: the record is locked, the declarant's authority checked (the inventory's ``agentCode`` or
its platform, or an enterprise either delegated orders to — anyone else gets 404, as for the record itself),
the state rules of ``app/rules/after_release.py`` applied, the InvtCancel / InvtRefund composed from the
stored inventory, signed with the service's key and checked against CEB623.xsd / CEB625.xsd, and the request
stored with its first receipt (``2``, 电子口岸申报中) on the record's timeline and in the feed. Customs is
called later, outside any transaction (``after_release_delivery``); its answer moves the record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ceb.codec import new_guid, return_time
from app.config import Settings
from app.crypto.identity import SigningNotConfigured, signing_identity
from app.db import utcnow
from app.errors import DomainError, NotFound
from app.models import AgencyReceipt, Declaration, Delegation, InventoryRequest, MatchRecord
from app.rules import after_release as rules
from app.rules.after_release import Refused, RequestKind
from app.schemas.ceb_types import CHINA_TZ
from app.services.accept import check_sender
from app.services.audit import record_act
from app.services.auth import Principal
from app.services.declaration import notify_dispatchers
from app.services.inventory_signing import signed_request_message
from app.services.records import party_clause
from app.services.timeline import add_event

RECEIPT_MESSAGE = {"cancel": "CEB624", "return": "CEB626"}


def refusal_error(refused: Refused) -> DomainError:
    refusal = refused.refusal
    return DomainError(
        f"{refusal.en}: {refused.detail}",
        code=refused.code,
        status=refusal.http_status,
        cebReturnStatus=refusal.ceb_return_status,
        reason={"zh": refusal.zh, "en": refusal.en},
    )


async def _authorised(session: AsyncSession, principal: Principal, record: MatchRecord, declarant: str) -> bool:
    """The declarant (agentCode) or the platform, or an enterprise one of them delegated its orders to."""
    code = principal.enterprise_code
    owners = {declarant, record.ebp_code}
    if code in owners:
        return True
    delegations = await session.scalars(
        select(Delegation).where(
            Delegation.agent_code == code, Delegation.principal_code.in_(owners), Delegation.revoked_at.is_(None)
        )
    )
    return any("order" in d.document_types for d in delegations)


async def _record_for(session: AsyncSession, principal: Principal, ebp_code: str, order_no: str) -> MatchRecord:
    record = await session.scalar(
        select(MatchRecord).where(MatchRecord.ebp_code == ebp_code, MatchRecord.order_no == order_no).with_for_update()
    )
    if record is None:
        raise NotFound(f"No record of order {order_no} of {ebp_code}", code="RECORD_NOT_FOUND")
    return record


async def _customs_numbers(session: AsyncSession, record: MatchRecord) -> dict[str, str]:
    """The pre-entry and inventory numbers customs gave in its receipts, if any."""
    payloads = await session.scalars(
        select(AgencyReceipt.payload).where(AgencyReceipt.record_id == record.id, AgencyReceipt.agency == "customs")
    )
    numbers: dict[str, str] = {}
    for payload in payloads:
        for name in ("preNo", "invtNo"):
            if payload.get(name):
                numbers[name] = str(payload[name])
    return numbers


def _released_at(record: MatchRecord) -> datetime | None:
    return record.settled_at if record.status == "CLEARED" else None


async def file_request(
    session: AsyncSession, settings: Settings, principal: Principal, kind: RequestKind, data: Mapping[str, Any]
) -> InventoryRequest:
    """Store a cancel or return (``data``: the wire model's fields, CEB names); raises the refusal otherwise."""
    check_sender(principal)
    record = await _record_for(session, principal, str(data["ebpCode"]), str(data["orderNo"]))
    declaration = await session.get(Declaration, record.id)
    inventory = declaration.inventory if declaration is not None else {}
    declarant = str(inventory.get("agentCode") or record.ebc_code or "")
    if not await _authorised(session, principal, record, declarant):
        party = await session.scalar(
            select(MatchRecord.id).where(MatchRecord.id == record.id, party_clause(str(principal.enterprise_code)))
        )
        if party is None:  # not a party: the record does not exist for it
            raise NotFound(f"No record of order {data['orderNo']} of {data['ebpCode']}", code="RECORD_NOT_FOUND")
        raise DomainError(
            f"Only the declarant ({declarant}) or the platform ({record.ebp_code}), or an enterprise they delegated "
            "their orders to, may cancel or return this inventory",
            code="NOT_AUTHORISED_FOR_ENTERPRISE",
            status=403,
        )
    pending = await session.scalar(
        select(InventoryRequest.id).where(
            InventoryRequest.record_id == record.id, InventoryRequest.status == "declared"
        )
    )
    now = utcnow()
    refused = (
        rules.cancel_refusal(record.status, pending is not None)
        if kind == "cancel"
        else rules.return_refusal(record.status, pending is not None, _released_at(record), now)
    )
    if refused is None and declaration is None:
        refused = Refused("INVENTORY_NOT_DECLARED", "the record has no declaration")
    if refused is not None:
        raise refusal_error(refused)
    assert declaration is not None
    numbers = await _customs_numbers(session, record)
    released = _released_at(record) or now
    inventory_no = numbers.get("invtNo") or rules.inventory_number(
        str(inventory["customsCode"]), released.astimezone(CHINA_TZ).year, record.id.int
    )
    differing = rules.disagreements(data, {**inventory, "invtNo": inventory_no})
    if differing:
        raise refusal_error(Refused("REQUEST_DIFFERS_FROM_INVENTORY", f"differs in {', '.join(differing)}"))

    guid = str(data.get("guid") or new_guid()).upper()
    fields: dict[str, Any] = {
        "guid": guid,
        "appType": "1",
        "appTime": now.astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S"),
        "appStatus": "2",
        **{name: inventory.get(name) for name in rules.INVENTORY_FIELDS},
        "preNo": numbers.get("preNo") or record.id.hex[:18].upper(),
        "invtNo": inventory_no,
        "reason": data["reason"],
        "note": data.get("note"),
    }
    returned_value = None
    goods_back_by = None
    if kind == "return":
        asked = data.get("invtRefundList")
        lines = rules.returned_lines(inventory.get("inventoryList") or [], asked)
        if isinstance(lines, Refused):
            raise refusal_error(lines)
        fields["invtRefundList"] = lines.lines
        declared_value = sum(
            (rules.decimal_or_zero(line.get("totalPrice")) for line in inventory.get("inventoryList") or []),
            rules.ZERO,
        )
        returned_value = rules.quota_given_back(declaration.dutiable_value, declared_value, lines)
        goods_back_by = rules.goods_back_by(released)
    else:
        returned_value = declaration.dutiable_value
    try:
        identity = signing_identity(settings)
    except SigningNotConfigured as exc:
        raise DomainError(str(exc), code="SIGNING_NOT_CONFIGURED", status=503) from exc
    message = signed_request_message(kind, fields, identity)

    accepted = {
        "returnStatus": "2",
        "returnInfo": f"新增申报成功[{guid}]",
        "returnTime": return_time(now),
    }
    request = InventoryRequest(
        id=uuid.uuid4(),
        record_id=record.id,
        kind=kind,
        guid=guid,
        status="declared",
        fields=fields,
        message=message.decode(),
        sender_code=str(principal.enterprise_code),
        returned_value=returned_value,
        goods_back_by=goods_back_by,
        receipts=[accepted],
        delivery="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    add_event(
        session,
        f"{kind}_requested",
        principal.actor,
        record_id=record.id,
        detail={"requestId": str(request.id), "guid": guid, "reason": fields["reason"]},
    )
    add_event(
        session,
        "agency_receipt",
        principal.actor,
        record_id=record.id,
        detail={
            "agency": "customs",
            "message": RECEIPT_MESSAGE[kind],
            "requestId": str(request.id),
            "returnStatus": "2",
            "returnInfo": accepted["returnInfo"],
            "source": "intake",
        },
    )
    await record_act(
        session,
        principal,
        f"inventory.{kind}",
        "record",
        record.id,
        after={"requestId": str(request.id), "guid": guid, "reason": fields["reason"], "invtNo": inventory_no},
    )
    await notify_dispatchers(session)
    await session.flush()
    return request


async def get_request(
    session: AsyncSession, principal: Principal, kind: RequestKind, request_id: uuid.UUID
) -> InventoryRequest:
    """A request as its record's readers see it (404 for anyone else)."""
    request = await session.get(InventoryRequest, request_id)
    if request is None or request.kind != kind:
        raise NotFound(f"No {kind} request {request_id}", code="REQUEST_NOT_FOUND")
    if not principal.reads_everything:
        visible = await session.scalar(
            select(MatchRecord.id).where(
                MatchRecord.id == request.record_id, party_clause(str(principal.enterprise_code))
            )
        )
        if visible is None:
            raise NotFound(f"No {kind} request {request_id}", code="REQUEST_NOT_FOUND")
    return request
