"""The outbox worker's unit of work: claim due dispatches, call the agency outside any transaction, record
the outcome. At-least-once; the dispatch id is the agency's idempotency key, so it acts once.

Claiming: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (many workers side by side); compare-and-set on SQLite
(``UPDATE … WHERE status IN ('pending','retry')`` checked by rowcount), which is correct everywhere.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select, tuple_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.adapters.base import AgencyAdapter, AgencyAnswer, AgencyError, PermanentAgencyError, RetryableAgencyError
from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.models import Declaration, Dispatch, DispatchAttempt, Document, Goods, MatchRecord
from app.observability import Metrics, record_id_var
from app.rules.backoff import backoff_delay
from app.services.receipts import apply_receipts, mark_dispatch_state
from app.services.timeline import add_event

log = logging.getLogger(__name__)
DUE = ("pending", "retry")
WORKER_ACTOR = "worker"


@dataclass(frozen=True)
class Claim:
    id: uuid.UUID
    record_id: uuid.UUID
    agency: str
    attempt: int


async def reap_expired_leases(sessionmaker: async_sessionmaker[AsyncSession], max_attempts: int) -> int:
    """In-flight dispatches whose worker died (lease expired) go back to ``retry`` — or to ``dead`` once they
    have used every attempt, so that a dispatch that kills its worker is not tried forever."""

    async def work(session: AsyncSession) -> int:
        now = utcnow()
        expired = and_(Dispatch.status == "in_flight", Dispatch.lease_until < now)
        dead = await session.execute(
            update(Dispatch)
            .where(expired, Dispatch.attempts >= max_attempts)
            .values(status="dead", lease_until=None, updated_at=now, last_error="lease expired on the last attempt")
        )
        again = await session.execute(
            update(Dispatch)
            .where(expired)
            .values(status="retry", next_attempt_at=now, lease_until=None, updated_at=now, last_error="lease expired")
        )
        return int(getattr(dead, "rowcount", 0) or 0) + int(getattr(again, "rowcount", 0) or 0)

    return await run_in_transaction(sessionmaker, work)


async def claim_due(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> list[Claim]:
    async def work(session: AsyncSession) -> list[Claim]:
        now = utcnow()
        lease_until = now + timedelta(seconds=settings.dispatch_lease_s)
        due = (
            select(Dispatch.id)
            .where(Dispatch.status.in_(DUE), Dispatch.next_attempt_at <= now)
            .order_by(Dispatch.next_attempt_at)
            .limit(settings.dispatch_batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            rows = await session.execute(
                update(Dispatch)
                .where(Dispatch.id.in_(due.with_for_update(skip_locked=True).scalar_subquery()))
                .values(status="in_flight", lease_until=lease_until, attempts=Dispatch.attempts + 1, updated_at=now)
                .returning(Dispatch.id, Dispatch.record_id, Dispatch.agency, Dispatch.attempts)
            )
            return [Claim(*row) for row in rows]
        claims = []
        for dispatch_id in list(await session.scalars(due)):
            row = (
                await session.execute(
                    update(Dispatch)
                    .where(Dispatch.id == dispatch_id, Dispatch.status.in_(DUE))
                    .values(status="in_flight", lease_until=lease_until, attempts=Dispatch.attempts + 1, updated_at=now)
                    .returning(Dispatch.id, Dispatch.record_id, Dispatch.agency, Dispatch.attempts)
                )
            ).first()
            if row is not None:
                claims.append(Claim(*row))
        return claims

    return await run_in_transaction(sessionmaker, work)


def database_failure(exc: BaseException) -> RetryableAgencyError:
    """Our database failed (reading the package), not the agency: try again later, never dead-letter for it."""
    return RetryableAgencyError(f"database: {type(exc).__name__}: {exc}"[:1000])


async def build_package(session: AsyncSession, claim: Claim, settings: Settings) -> dict[str, Any]:
    """Everything an agency may need about one declaration (each adapter keeps its part)."""
    package = (await build_packages(session, [claim], settings))[claim.id]
    if isinstance(package, AgencyError):
        raise package
    return package


async def build_packages(
    session: AsyncSession, claims: Sequence[Claim], settings: Settings
) -> dict[uuid.UUID, dict[str, Any] | AgencyError]:
    """The packages of a round of claims in three queries, whatever their number (the four agencies of a
    record share its declaration, documents and goods)."""
    record_ids = sorted({c.record_id for c in claims})
    declarations = {
        d.record_id: d for d in await session.scalars(select(Declaration).where(Declaration.record_id.in_(record_ids)))
    }
    docs: dict[uuid.UUID, dict[str, Any]] = {}
    for d in await session.scalars(
        select(Document).where(Document.record_id.in_(record_ids), Document.state == "active")
    ):
        assert d.record_id is not None
        docs.setdefault(d.record_id, {})[d.doc_type] = d.payload
    wanted = sorted(
        {
            (d.inventory["ebcCode"], line["itemNo"])
            for d in declarations.values()
            for line in d.inventory.get("inventoryList", [])
            if line.get("itemNo")
        }
    )
    goods: dict[str, list[Goods]] = {}
    if wanted:
        for g in await session.scalars(select(Goods).where(tuple_(Goods.ebc_code, Goods.item_no).in_(wanted))):
            goods.setdefault(g.ebc_code, []).append(g)
    base = (settings.public_base_url or "http://embedded").rstrip("/")
    packages: dict[uuid.UUID, dict[str, Any] | AgencyError] = {}
    for claim in claims:
        declaration = declarations.get(claim.record_id)
        if declaration is None:
            packages[claim.id] = PermanentAgencyError(f"record {claim.record_id} has no declaration")
            continue
        inventory = declaration.inventory
        ebc_code = inventory["ebcCode"]
        items = {line.get("itemNo") for line in inventory.get("inventoryList", [])}
        record_docs = docs.get(claim.record_id, {})
        packages[claim.id] = {
            "dispatchId": str(claim.id),
            "recordId": str(claim.record_id),
            "agency": claim.agency,
            "callbackUrl": f"{base}/api/v1/agency-callbacks/{claim.agency}",
            "inventory": inventory,
            "tax": declaration.tax,
            "order": record_docs.get("order"),
            "payment": record_docs.get("payment"),
            "waybill": record_docs.get("waybill"),
            "goods": [
                {
                    "itemNo": g.item_no,
                    "gcode": g.gcode,
                    "gname": g.gname,
                    "positiveList": g.positive_list,
                    "vatRate": str(g.vat_rate),
                    "consumptionTaxRate": str(g.consumption_tax_rate),
                }
                for g in goods.get(ebc_code, [])
                if g.item_no in items
            ],
            # Filing keeps no credit grade (yet): every seller is "general" to the agencies' rules.
            "seller": {"code": ebc_code, "creditGrade": "general"},
        }
    return packages


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    adapters: dict[str, AgencyAdapter],
    claim: Claim,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
    package: dict[str, Any] | AgencyError | None = None,
) -> str:
    """Send one claimed dispatch and record what happened; returns the outcome. ``package``: built already
    (``build_packages``, for a whole round), or an error met building it; by default it is read here."""
    record_id_var.set(str(claim.record_id))
    started = utcnow()
    clock = time.perf_counter()
    answer: AgencyAnswer | None = None
    error: AgencyError | None = None
    try:
        adapter = adapters.get(claim.agency)
        if adapter is None:
            raise PermanentAgencyError(f"no adapter configured for {claim.agency}")
        if package is None:
            async with sessionmaker() as session:
                package = await build_package(session, claim, settings)
        if isinstance(package, AgencyError):
            raise package
        answer = await adapter.submit(package, str(claim.id))  # outside any transaction
    except AgencyError as exc:
        error = exc
    except (SQLAlchemyError, OSError) as exc:
        error = database_failure(exc)
    except Exception as exc:
        log.exception("dispatch %s to %s: unexpected failure", claim.id, claim.agency)
        error = PermanentAgencyError(f"unexpected: {type(exc).__name__}: {exc}"[:1000])
    elapsed = time.perf_counter() - clock
    if error is not None:
        log.warning("dispatch %s to %s failed (attempt %d): %s", claim.id, claim.agency, claim.attempt, error)

    async def record_outcome(session: AsyncSession) -> str:
        now = utcnow()
        if answer is not None:
            outcome, values = "delivered", {"status": "delivered", "delivered_at": now, "last_error": None}
        elif isinstance(error, RetryableAgencyError) and claim.attempt < settings.dispatch_max_attempts:
            delay = backoff_delay(
                claim.attempt,
                settings.dispatch_backoff_base_s,
                settings.dispatch_backoff_cap_s,
                error.retry_after_s,
                rng,
            )
            outcome = "retry"
            values = {
                "status": "retry",
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_error": str(error)[:1000],
            }
        else:
            outcome, values = "dead", {"status": "dead", "last_error": str(error)[:1000]}
        # Only the holder of the current claim may record it: a reaped and re-claimed dispatch has moved on.
        result = await session.execute(
            update(Dispatch)
            .where(and_(Dispatch.id == claim.id, Dispatch.status == "in_flight", Dispatch.attempts == claim.attempt))
            .values(lease_until=None, updated_at=now, **values)
        )
        if not getattr(result, "rowcount", 0):
            return "lost_lease"
        session.add(
            DispatchAttempt(
                dispatch_id=claim.id,
                attempt_no=claim.attempt,
                started_at=started,
                finished_at=now,
                outcome=outcome,
                http_status=error.status if error is not None else 200,
                error=str(error)[:1000] if error is not None else None,
            )
        )
        record = await session.get(MatchRecord, claim.record_id, with_for_update=True)
        assert record is not None
        if answer is not None:
            await apply_receipts(
                session, record, claim.agency, answer.receipts, source="reply", actor=WORKER_ACTOR, dispatch_id=claim.id
            )
        else:
            mark_dispatch_state(record, claim.agency, outcome, str(error)[:300])
            if outcome == "dead":
                add_event(
                    session,
                    "dispatch_dead",
                    WORKER_ACTOR,
                    record_id=record.id,
                    detail={"agency": claim.agency, "dispatchId": str(claim.id), "error": str(error)[:300]},
                )
        return outcome

    outcome = await run_in_transaction(sessionmaker, record_outcome)
    if metrics is not None:
        metrics.dispatch_attempts.labels(agency=claim.agency, outcome=outcome).inc()
        metrics.dispatch_latency.labels(agency=claim.agency, outcome=outcome).observe(elapsed)
    return outcome
