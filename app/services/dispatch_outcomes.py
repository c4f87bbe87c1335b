"""Recording what a round of batch calls did, a few statements per round whatever its size: one
``UPDATE … RETURNING`` closes every claim still held, one insert adds the attempt rows, one
``SELECT … FOR UPDATE`` (in id order) locks the records, whose receipts and timeline rows are then flushed
together. Lock order as everywhere in the dispatcher: dispatch rows first, then match records.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, insert, literal, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.base import AgencyAnswer, AgencyError, RetryableAgencyError
from app.config import Settings
from app.db import utcnow
from app.models import Dispatch, DispatchAttempt, MatchRecord, table_of
from app.rules.backoff import backoff_delay
from app.services.receipts import ReceiptRows, apply_receipts, mark_dispatch_state
from app.services.rollups import write_session_tally

if TYPE_CHECKING:
    from app.services.dispatch import Claim

WORKER_ACTOR = "worker"
LOST_LEASE = "lost_lease"


@dataclass(frozen=True)
class Plan:
    """What one dispatch becomes: delivered, retry (at ``next_attempt_at``) or dead."""

    outcome: str
    error: str | None = None
    next_attempt_at: datetime | None = None


def plan(
    claim: Claim, result: AgencyAnswer | AgencyError, settings: Settings, now: datetime, rng: random.Random | None
) -> Plan:
    if isinstance(result, AgencyAnswer):
        return Plan("delivered")
    error = str(result)[:1000]
    if isinstance(result, RetryableAgencyError) and claim.attempt < settings.dispatch_max_attempts:
        delay = backoff_delay(
            claim.attempt, settings.dispatch_backoff_base_s, settings.dispatch_backoff_cap_s, result.retry_after_s, rng
        )
        return Plan("retry", error, now + timedelta(seconds=delay))
    return Plan("dead", error)


async def record_outcomes(
    session: AsyncSession,
    settings: Settings,
    sent: Sequence[tuple[Claim, AgencyAnswer | AgencyError, datetime]],
    rng: random.Random | None = None,
) -> dict[uuid.UUID, str]:
    """The outcome of each dispatch of ``sent`` (claim, what the call gave, when the call started) — any number
    of agencies' batches together; ``lost_lease`` for one whose claim has moved on (reaped and claimed again):
    only the holder of the current claim may record it."""
    now = utcnow()
    plans = {claim.id: plan(claim, result, settings, now, rng) for claim, result, _ in sent}
    held = await _close_claims(session, [claim for claim, _, _ in sent], plans, now)
    outcomes = {claim.id: plans[claim.id].outcome if claim.id in held else LOST_LEASE for claim, _, _ in sent}
    mine = sorted(((c, r, t) for c, r, t in sent if c.id in held), key=lambda item: item[0].record_id)
    if mine:
        await session.execute(
            insert(table_of(DispatchAttempt)),  # Core: no ORM objects for the round's attempt rows
            [
                {
                    "id": uuid.uuid4(),
                    "dispatch_id": claim.id,
                    "attempt_no": claim.attempt,
                    "started_at": started,
                    "finished_at": now,
                    "outcome": plans[claim.id].outcome,
                    "http_status": result.status if isinstance(result, AgencyError) else 200,
                    "error": plans[claim.id].error,
                }
                for claim, result, started in mine
            ],
        )
    records = await _lock_records(session, [claim.record_id for claim, _, _ in mine])
    rows = ReceiptRows()
    for claim, result, _ in mine:
        record = records[claim.record_id]
        if isinstance(result, AgencyAnswer):
            await apply_receipts(
                session,
                record,
                claim.agency,
                result.receipts,
                source="reply",
                actor=WORKER_ACTOR,
                dispatch_id=claim.id,
                rows=rows,
            )
            continue
        outcome, error = plans[claim.id].outcome, str(result)[:300]
        mark_dispatch_state(record, claim.agency, outcome, error)
        if outcome == "dead":
            detail = {"agency": claim.agency, "dispatchId": str(claim.id), "error": error}
            rows.events.add("dispatch_dead", WORKER_ACTOR, record_id=record.id, detail=detail)
    await rows.write(session)
    await write_session_tally(session)
    return outcomes


async def _close_claims(
    session: AsyncSession, claims: Sequence[Claim], plans: dict[uuid.UUID, Plan], now: datetime
) -> set[uuid.UUID]:
    """One UPDATE for the batch, each row's values picked by its id; returns the ids still held (in flight
    with the attempt number of our claim)."""
    if not claims:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        return await _close_claims_pg(session, claims, plans, now)

    def by_id(values: dict[uuid.UUID, Any], column: Any) -> ColumnElement[Any]:
        if not values:
            return column  # type: ignore[no-any-return]
        typed = {key: literal(value, column.type) for key, value in values.items()}
        return case(typed, value=Dispatch.id, else_=column)

    result = await session.execute(
        update(Dispatch)
        .where(
            tuple_(Dispatch.id, Dispatch.attempts).in_([(c.id, c.attempt) for c in claims]),
            Dispatch.status == "in_flight",
        )
        .values(
            status=by_id({k: p.outcome for k, p in plans.items()}, Dispatch.status),
            last_error=by_id({k: p.error for k, p in plans.items()}, Dispatch.last_error),
            next_attempt_at=by_id(
                {k: p.next_attempt_at for k, p in plans.items() if p.next_attempt_at is not None},
                Dispatch.next_attempt_at,
            ),
            delivered_at=by_id({k: now for k, p in plans.items() if p.outcome == "delivered"}, Dispatch.delivered_at),
            lease_until=None,
            updated_at=now,
        )
        .returning(Dispatch.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


# The same UPDATE on PostgreSQL with the values as arrays: one statement text whatever the batch (prepared once
# per connection), where the CASE form above is a new statement — parsed and planned again — for every batch size.
_CLOSE_CLAIMS_PG = text(
    """
    UPDATE dispatch AS d
       SET status = v.status,
           last_error = v.last_error,
           next_attempt_at = coalesce(v.next_attempt_at, d.next_attempt_at),
           delivered_at = coalesce(v.delivered_at, d.delivered_at),
           lease_until = NULL,
           updated_at = :now
      FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[]), CAST(:statuses AS text[]),
                  CAST(:errors AS text[]), CAST(:next_attempts AS timestamptz[]), CAST(:delivered AS timestamptz[]))
           AS v(id, attempts, status, last_error, next_attempt_at, delivered_at)
     WHERE d.id = v.id AND d.attempts = v.attempts AND d.status = 'in_flight'
    RETURNING d.id
    """
)


async def _close_claims_pg(
    session: AsyncSession, claims: Sequence[Claim], plans: dict[uuid.UUID, Plan], now: datetime
) -> set[uuid.UUID]:
    chosen = [plans[c.id] for c in claims]
    result = await session.execute(
        _CLOSE_CLAIMS_PG,
        {
            "now": now,
            "ids": [c.id for c in claims],
            "attempts": [c.attempt for c in claims],
            "statuses": [p.outcome for p in chosen],
            "errors": [p.error for p in chosen],
            "next_attempts": [p.next_attempt_at for p in chosen],
            "delivered": [now if p.outcome == "delivered" else None for p in chosen],
        },
    )
    return set(result.scalars())


async def _lock_records(session: AsyncSession, record_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, MatchRecord]:
    """The batch's records, locked in id order so that concurrent batches (other agencies of the same
    records) queue instead of deadlocking."""
    if not record_ids:
        return {}
    rows = await session.scalars(
        select(MatchRecord)
        .where(MatchRecord.id.in_(sorted(set(record_ids))))
        .order_by(MatchRecord.id)
        .with_for_update()
    )
    return {record.id: record for record in rows}
