"""Agency answers (回执) back on the record: stored, on the timeline, and moving the record's status.

The statistics rollups note the record before the answers change it (``session_tally``); the caller writes
them (``write_session_tally``) before its transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.base import AgencyReceipt
from app.db import utcnow
from app.lifecycle.apply import apply_event
from app.lifecycle.status import Effect, RecordEvent
from app.models import AgencyReceipt as AgencyReceiptRow
from app.models import Declaration, MatchRecord, table_of
from app.rules.agency_status import agency_state, is_rejection, later_state, record_status_after
from app.services.rollups import session_tally
from app.services.timeline import EventRows

# The status ``record_status_after`` reads from the agencies' answers, as the lifecycle event it is.
AGENCY_EVENTS = {
    "INSPECTION": RecordEvent.AGENCY_HELD,
    "CLEARED": RecordEvent.AGENCY_RELEASED,
    "REJECTED": RecordEvent.AGENCY_REJECTED,
}


@dataclass
class ReceiptRows:
    """The receipt rows and timeline events of one or many records' answers, written together (``write``,
    before the transaction commits): a round of the dispatcher records hundreds at once."""

    receipts: list[dict[str, Any]] = field(default_factory=list)
    events: EventRows = field(default_factory=EventRows)

    async def write(self, session: AsyncSession) -> None:
        receipts, self.receipts = self.receipts, []
        if receipts:
            await session.execute(insert(table_of(AgencyReceiptRow)), receipts)
        await self.events.write(session)


async def apply_receipts(
    session: AsyncSession,
    record: MatchRecord,
    agency: str,
    receipts: Sequence[AgencyReceipt],
    *,
    source: str,
    actor: str,
    dispatch_id: uuid.UUID | None = None,
    callback_id: str | None = None,
    rows: ReceiptRows | None = None,
) -> None:
    """``rows``: where to gather the rows for the caller to write; without it they are written here."""
    own_rows = rows is None
    rows = rows or ReceiptRows()
    now = utcnow()
    session_tally(session).before(record)
    agencies = dict(record.agencies)
    for receipt in receipts:
        rows.receipts.append(
            {
                "id": uuid.uuid4(),
                "record_id": record.id,
                "agency": agency,
                "dispatch_id": dispatch_id,
                "return_status": receipt.return_status,
                "return_info": receipt.return_info,
                "source": source,
                "callback_id": callback_id,
                "payload": {"returnTime": receipt.return_time, **receipt.extra},
                "received_at": now,
            }
        )
        # Only the first row of a callback carries its id (the unique dedupe key).
        callback_id = None
        rows.events.add(
            "agency_receipt",
            actor,
            record_id=record.id,
            detail={
                "agency": agency,
                "returnStatus": receipt.return_status,
                "returnInfo": receipt.return_info,
                "source": source,
                # customs' inventory number, for the CEB622 the feed sends (app/services/enterprise_feed.py)
                **({"invtNo": str(receipt.extra["invtNo"])} if receipt.extra.get("invtNo") else {}),
            },
        )
        previous = agencies.get(agency, {})
        state = agency_state(receipt.return_status)
        if agency == "customs" and state != "rejected" and record.customs_accepted_at is None:
            record.customs_accepted_at = now  # the clock of t_customs starts at customs' first acceptance
        if later_state(previous.get("state"), state) != state:
            continue  # an earlier stage arriving late (a reply after its callback) changes nothing
        agencies[agency] = {
            **previous,
            "status": "delivered",
            "state": state,
            "returnStatus": receipt.return_status,
            "returnInfo": receipt.return_info,
            "updatedAt": now.isoformat(),
        }
    record.agencies = agencies
    status = record_status_after(record.status, agencies)
    if status != record.status:
        if status == "REJECTED":
            rejecting = next((r for r in receipts if is_rejection(r.return_status)), None)
            record.rejection = {
                "agency": agency,
                "cebReturnStatus": rejecting.return_status if rejecting else None,
                "returnInfo": rejecting.return_info if rejecting else None,
            }
        effects = apply_event(
            record,
            AGENCY_EVENTS[status],
            lambda kind, rec, detail: rows.events.add(kind, actor, record_id=rec.id, detail=detail),
            agency=agency,
        )
        if Effect.RELEASE_QUOTA in effects:
            declaration = await session.get(Declaration, record.id)
            if declaration is not None:
                declaration.counts_to_quota = False  # a rejected purchase does not use the buyer's quota
    record.updated_at = now
    if own_rows:
        await rows.write(session)


def mark_dispatch_state(record: MatchRecord, agency: str, status: str, error: str | None = None) -> None:
    """Keep the record's per-agency summary in step with its dispatch (retry, dead, …)."""
    agencies = dict(record.agencies)
    agencies[agency] = {**agencies.get(agency, {}), "status": status, "lastError": error}
    record.agencies = agencies
