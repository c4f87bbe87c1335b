"""The outbox worker's unit of work: claim due dispatches, call each agency once per batch of them outside any
transaction, record the outcome of each (``dispatch_outcomes``). At-least-once; each dispatch id is the
agency's idempotency key for its declaration, so it acts once.

Claiming: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (many workers side by side); compare-and-set on SQLite
(``UPDATE … WHERE status IN ('pending','retry')`` checked by rowcount), which is correct everywhere.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.adapters.base import AgencyAdapter, AgencyAnswer, AgencyError, PermanentAgencyError, RetryableAgencyError
from app.adapters.batch import send_batch
from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.models import Dispatch
from app.observability import Metrics, record_id_var
from app.services.declaration import enabled_agencies
from app.services.dispatch_outcomes import record_outcomes
from app.services.dispatch_packages import build_package as build_package
from app.services.dispatch_packages import build_packages

log = logging.getLogger(__name__)
DUE = ("pending", "retry")


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


def claim_limit(settings: Settings) -> int:
    """A round claims enough for one full batch per agency."""
    return settings.dispatch_batch_size * max(1, len(enabled_agencies(settings)))


async def claim_due(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> list[Claim]:
    async def work(session: AsyncSession) -> list[Claim]:
        now = utcnow()
        lease_until = now + timedelta(seconds=settings.dispatch_lease_s)
        due = (
            select(Dispatch.id)
            .where(Dispatch.status.in_(DUE), Dispatch.next_attempt_at <= now)
            .order_by(Dispatch.next_attempt_at)
            .limit(claim_limit(settings))
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


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    adapters: dict[str, AgencyAdapter],
    claim: Claim,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
    package: dict[str, Any] | AgencyError | None = None,
) -> str:
    """Send one claimed dispatch and record what happened; returns the outcome (a batch of one)."""
    packages = None if package is None else {claim.id: package}
    [outcome] = await deliver_batch(sessionmaker, settings, adapters, [claim], packages, rng, metrics)
    return outcome


@dataclass
class Sent:
    """One agency call of a round and what came of each of its dispatches (not yet recorded)."""

    agency: str
    claims: Sequence[Claim]
    results: dict[uuid.UUID, AgencyAnswer | AgencyError]
    started: datetime
    elapsed_s: float


async def send_group(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    adapters: dict[str, AgencyAdapter],
    claims: Sequence[Claim],
    packages: Mapping[uuid.UUID, dict[str, Any] | AgencyError] | None = None,
) -> Sent:
    """Send claimed dispatches of one agency in one adapter call, outside any transaction. ``packages``: built
    already (``build_packages``, for a whole round), or read here. A declaration whose package cannot be built
    is not sent and fails alone."""
    agencies = {c.agency for c in claims}
    if len(agencies) != 1:
        raise ValueError(f"a batch goes to one agency, not {sorted(agencies)}")
    [agency] = agencies
    started = utcnow()
    clock = time.perf_counter()
    if packages is None:
        packages = await read_packages(sessionmaker, claims, settings)
    results: dict[uuid.UUID, AgencyAnswer | AgencyError] = {}
    ready: list[tuple[Claim, dict[str, Any]]] = []
    for claim in claims:
        package = packages.get(claim.id) or PermanentAgencyError("no package was built")
        if isinstance(package, AgencyError):
            results[claim.id] = package
        else:
            ready.append((claim, package))
    answers = await send_batch(adapters.get(agency), agency, [(str(c.id), p) for c, p in ready])  # no transaction
    results.update(zip((c.id for c, _ in ready), answers, strict=True))
    elapsed = time.perf_counter() - clock
    for claim in claims:
        if isinstance(error := results[claim.id], AgencyError):
            token = record_id_var.set(str(claim.record_id))
            log.warning("dispatch %s to %s failed (attempt %d): %s", claim.id, agency, claim.attempt, error)
            record_id_var.reset(token)
    return Sent(agency, claims, results, started, elapsed)


async def record_sent(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    sent: Sequence[Sent],
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
) -> dict[uuid.UUID, str]:
    """Record the outcome of every dispatch of ``sent`` in one transaction; the outcome of each by id.

    A round's calls to the four agencies carry the same declarations: recorded apart, their transactions
    queued on the same records' locks one behind the other; together they take each lock once."""

    async def record_outcome(session: AsyncSession) -> dict[uuid.UUID, str]:
        triples = [(c, group.results[c.id], group.started) for group in sent for c in group.claims]
        return await record_outcomes(session, settings, triples, rng)

    # The name is what tests/soak/crash_worker.py plants its "commit" kill in.
    outcomes = await run_in_transaction(sessionmaker, record_outcome)
    if metrics is not None:
        for group in sent:
            for claim in group.claims:
                outcome = outcomes[claim.id]
                metrics.dispatch_attempts.labels(agency=group.agency, outcome=outcome).inc()
                metrics.dispatch_latency.labels(agency=group.agency, outcome=outcome).observe(group.elapsed_s)
    return outcomes


async def deliver_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    adapters: dict[str, AgencyAdapter],
    claims: Sequence[Claim],
    packages: Mapping[uuid.UUID, dict[str, Any] | AgencyError] | None = None,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
) -> list[str]:
    """Send claimed dispatches of one agency in one adapter call and record the outcome of each; returns
    them in order."""
    sent = await send_group(sessionmaker, settings, adapters, claims, packages)
    outcomes = await record_sent(sessionmaker, settings, [sent], rng, metrics)
    return [outcomes[c.id] for c in claims]


async def read_packages(
    sessionmaker: async_sessionmaker[AsyncSession], claims: Sequence[Claim], settings: Settings
) -> dict[uuid.UUID, dict[str, Any] | AgencyError]:
    """If our database fails reading them, every claim is retried later (never dead-lettered for it)."""
    try:
        async with sessionmaker() as session:
            return await build_packages(session, claims, settings)
    except (SQLAlchemyError, OSError) as exc:
        return dict.fromkeys((c.id for c in claims), database_failure(exc))


def batches(claims: Sequence[Claim], size: int) -> list[list[Claim]]:
    """The claims grouped per agency, in batches of at most ``size``."""
    per_agency: dict[str, list[Claim]] = {}
    for claim in claims:
        per_agency.setdefault(claim.agency, []).append(claim)
    return [group[i : i + size] for group in per_agency.values() for i in range(0, len(group), size)]
