"""Cancels and returns to customs: claim the due requests, call customs outside any transaction, apply its
answer (CEB624 / CEB626) to the request and, once approved, to the record through the lifecycle.

Each request is its own outbox row (``inventory_request.delivery``), claimed by compare-and-set (correct on
both backends, as ``dispatch.claim_due`` on SQLite), with the same retry schedule as a dispatch; its id is the
agency-side idempotency key, so customs decides it once however often it is sent.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.adapters.base import (
    AfterReleaseAdapter,
    AgencyAdapter,
    AgencyAnswer,
    AgencyError,
    PermanentAgencyError,
    RetryableAgencyError,
)
from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.lifecycle.apply import apply_event
from app.lifecycle.status import Effect, RecordEvent
from app.models import Declaration, Dispatch, InventoryRequest, MatchRecord
from app.rules.after_release import request_outcome
from app.rules.backoff import backoff_delay
from app.services.after_release import RECEIPT_MESSAGE
from app.services.rollups import session_tally, write_session_tally
from app.services.timeline import add_event

log = logging.getLogger(__name__)
DUE = ("pending", "retry")
ROUND = 20  # requests claimed per round: they are rare next to declarations
APPROVAL_EVENTS = {"cancel": RecordEvent.INVENTORY_CANCELLED, "return": RecordEvent.GOODS_RETURNED}


async def claim_requests(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> list[uuid.UUID]:
    async def work(session: AsyncSession) -> list[uuid.UUID]:
        now = utcnow()
        # In-flight requests whose worker died go back to retry (their lease expired).
        await session.execute(
            update(InventoryRequest)
            .where(InventoryRequest.delivery == "in_flight", InventoryRequest.lease_until < now)
            .values(delivery="retry", lease_until=None, updated_at=now)
        )
        # A request follows its declaration: customs must have the inventory before it can cancel it.
        declared = exists().where(
            Dispatch.record_id == InventoryRequest.record_id,
            Dispatch.agency == "customs",
            Dispatch.status == "delivered",
        )
        due = await session.scalars(
            select(InventoryRequest.id)
            .where(InventoryRequest.delivery.in_(DUE), InventoryRequest.next_attempt_at <= now, declared)
            .order_by(InventoryRequest.next_attempt_at)
            .limit(ROUND)
        )
        claimed = []
        for request_id in list(due):
            row = (
                await session.execute(
                    update(InventoryRequest)
                    .where(InventoryRequest.id == request_id, InventoryRequest.delivery.in_(DUE))
                    .values(
                        delivery="in_flight",
                        lease_until=now + timedelta(seconds=settings.dispatch_lease_s),
                        attempts=InventoryRequest.attempts + 1,
                        updated_at=now,
                    )
                    .returning(InventoryRequest.id)
                )
            ).first()
            if row is not None:
                claimed.append(row[0])
        return claimed

    return await run_in_transaction(sessionmaker, work)


def _package(request: InventoryRequest, settings: Settings) -> dict[str, Any]:
    return {
        "requestId": str(request.id),
        "recordId": str(request.record_id),
        "kind": request.kind,
        "message": request.message,
        "request": request.fields,
    }


async def deliver_requests(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    adapters: dict[str, AgencyAdapter],
    rng: random.Random | None = None,
) -> int:
    """One round: every due request sent to customs once, its answer applied; returns how many were claimed."""
    claimed = await claim_requests(sessionmaker, settings)
    for request_id in claimed:
        async with sessionmaker() as session:
            request = await session.get(InventoryRequest, request_id)
        if request is None:
            continue
        adapter = adapters.get("customs")
        outcome: AgencyAnswer | AgencyError
        if not isinstance(adapter, AfterReleaseAdapter):
            outcome = PermanentAgencyError("the customs adapter cannot pass on cancels and returns")
        else:
            try:
                outcome = await adapter.submit_request(request.kind, _package(request, settings), str(request.id))
            except AgencyError as exc:
                outcome = exc
        try:
            await record_answer(sessionmaker, settings, request_id, outcome, rng)
        except Exception:  # the lease expires and the request is tried again
            log.exception("the answer to request %s was not recorded", request_id)
    return len(claimed)


async def record_answer(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    request_id: uuid.UUID,
    outcome: AgencyAnswer | AgencyError,
    rng: random.Random | None = None,
) -> None:
    async def work(session: AsyncSession) -> None:
        request = await session.get(InventoryRequest, request_id, with_for_update=True)
        if request is None or request.delivery != "in_flight":
            return
        now = utcnow()
        request.lease_until = None
        if isinstance(outcome, AgencyError):
            request.last_error = str(outcome)[:1000]
            if isinstance(outcome, RetryableAgencyError) and request.attempts < settings.dispatch_max_attempts:
                delay = backoff_delay(
                    request.attempts,
                    settings.dispatch_backoff_base_s,
                    settings.dispatch_backoff_cap_s,
                    outcome.retry_after_s,
                    rng,
                )
                request.delivery, request.next_attempt_at = "retry", now + timedelta(seconds=delay)
            else:
                request.delivery = "dead"
                add_event(
                    session,
                    "dispatch_dead",
                    "agency:customs",
                    record_id=request.record_id,
                    detail={"agency": "customs", "requestId": str(request.id), "error": request.last_error},
                )
            return
        request.delivery, request.last_error = "delivered", None
        await apply_request_receipts(session, request, outcome)

    await run_in_transaction(sessionmaker, work, retries=settings.max_transaction_retries)


async def apply_request_receipts(session: AsyncSession, request: InventoryRequest, answer: AgencyAnswer) -> None:
    """Customs' answers on the request and the record's timeline; an approval moves the record and gives the
    buyer's quota back. The rollups note the record before it changes (``session_tally``)."""
    record = await session.get(MatchRecord, request.record_id, with_for_update=True)
    assert record is not None
    now = utcnow()
    stored = [*request.receipts]
    for receipt in answer.receipts:
        stored.append(
            {
                "returnStatus": receipt.return_status,
                "returnInfo": receipt.return_info,
                "returnTime": receipt.return_time or "",
            }
        )
        add_event(
            session,
            "agency_receipt",
            "agency:customs",
            record_id=record.id,
            detail={
                "agency": "customs",
                "message": RECEIPT_MESSAGE[request.kind],
                "requestId": str(request.id),
                "returnStatus": receipt.return_status,
                "returnInfo": receipt.return_info,
                "source": "reply",
            },
        )
    request.receipts = stored
    decided = request_outcome([r.return_status for r in answer.receipts])
    if decided is None or request.status != "declared":
        return
    request.status, request.decided_at = decided, now
    if decided == "rejected":
        return
    session_tally(session).before(record)
    effects = apply_event(
        record,
        APPROVAL_EVENTS[request.kind],
        lambda kind, rec, detail: add_event(session, kind, "agency:customs", record_id=rec.id, detail=detail),
        agency="customs",
        requestId=str(request.id),
    )
    declaration = await session.get(Declaration, record.id)
    if declaration is not None:
        if Effect.RELEASE_QUOTA in effects:
            declaration.counts_to_quota = False  # a cancelled inventory does not use the buyer's quota
        if Effect.RETURN_QUOTA in effects and request.returned_value is not None:
            declaration.returned_value = min(declaration.dutiable_value, request.returned_value)
    await write_session_tally(session)
