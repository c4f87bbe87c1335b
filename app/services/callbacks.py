"""Signed agency callbacks (Standard Webhooks): verify, dedupe on the id, apply the receipts."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.adapters.base import read_receipts
from app.config import Settings
from app.db import run_in_transaction
from app.errors import Conflict, NotFound, Unauthenticated, Unprocessable
from app.models import AgencyReceipt as AgencyReceiptRow
from app.models import Dispatch, MatchRecord
from app.services.declaration import enabled_agencies
from app.services.receipts import apply_receipts
from app.services.rollups import write_session_tally
from app.webhooks import sign

TOLERANCE_S = 300


def verify(secrets: list[str], headers: dict[str, str], body: bytes, now: float | None = None) -> str:
    """The webhook id of a correctly signed, fresh callback; raises 401 otherwise."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    if not secrets:
        raise Unauthenticated("No callback secret is configured for this agency", code="SIGNATURE_INVALID")
    if not webhook_id or not timestamp or not signatures or len(webhook_id) > 100:
        raise Unauthenticated("Missing webhook-id, webhook-timestamp or webhook-signature", code="SIGNATURE_INVALID")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise Unauthenticated("webhook-timestamp is not unix seconds", code="SIGNATURE_INVALID") from exc
    if abs((now if now is not None else time.time()) - sent) > TOLERANCE_S:
        raise Unauthenticated("webhook-timestamp is outside the 5-minute window", code="SIGNATURE_STALE")
    expected = [sign(secret, webhook_id, timestamp, body) for secret in secrets]
    if not any(hmac.compare_digest(given, wanted) for given in signatures for wanted in expected):
        raise Unauthenticated("The signature does not match the body", code="SIGNATURE_INVALID")
    return webhook_id


async def receive_callback(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    agency: str,
    headers: dict[str, str],
    body: bytes,
) -> dict[str, Any]:
    if agency not in enabled_agencies(settings):
        raise NotFound(f"No agency {agency[:32]}", code="AGENCY_NOT_FOUND")
    # Only this agency's secrets: a callback signed by another agency is as good as unsigned here.
    webhook_id = verify(settings.callback_secrets(agency), headers, body)
    try:
        data = json.loads(body)
        record_id = uuid.UUID(str(data["recordId"]))
        receipts = read_receipts(data["receipts"])
        dispatch_id = uuid.UUID(str(data["dispatchId"])) if data.get("dispatchId") else None
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: nesting too deep
        raise Unprocessable(f"Not a callback body: {exc}", code="CALLBACK_INVALID") from exc
    if data.get("agency", agency) != agency:
        raise Unprocessable("The body's agency is not the agency of the URL", code="CALLBACK_INVALID")

    async def work(session: AsyncSession) -> dict[str, Any]:
        seen = await session.scalar(select(AgencyReceiptRow.id).where(AgencyReceiptRow.callback_id == webhook_id))
        if seen is not None:
            return {"status": "duplicate", "webhookId": webhook_id}
        record = await session.get(MatchRecord, record_id, with_for_update=True)
        if record is None:
            raise NotFound(f"No record {record_id}", code="RECORD_NOT_FOUND")
        # Only an agency the record was dispatched to may answer for it, and only once it is declared.
        dispatch = await session.scalar(
            select(Dispatch).where(Dispatch.record_id == record_id, Dispatch.agency == agency)
        )
        if dispatch is None or (dispatch_id is not None and dispatch.id != dispatch_id):
            raise Conflict(
                f"Record {record_id} has no dispatch to {agency} matching this callback", code="CALLBACK_NOT_APPLICABLE"
            )
        await apply_receipts(
            session,
            record,
            agency,
            receipts,
            source="callback",
            actor=f"agency:{agency}",
            dispatch_id=dispatch.id,
            callback_id=webhook_id,
        )
        await write_session_tally(session)
        return {"status": "accepted", "webhookId": webhook_id, "recordStatus": record.status}

    try:
        return await run_in_transaction(sessionmaker, work, retries=settings.max_transaction_retries, idempotent=True)
    except IntegrityError:  # the same id committed concurrently: processed once already
        return {"status": "duplicate", "webhookId": webhook_id}
