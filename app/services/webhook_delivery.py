"""Webhook deliveries as a queue: claim the due ones (SKIP LOCKED on PostgreSQL), build each body as the
subscription's enterprise may see the event, and record each attempt's outcome. No network call happens here:
the delivery worker (app/notify/worker.py) sends between a claim and its record, outside any transaction.

Order per record: only the head of each (subscription, ``ordering_key``) queue is claimable — the ones marked
``ready`` (app/services/delivery_heads.py) — so event N+1 waits until N is delivered or dead.
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.crypto.secret_box import SecretBox, SecretUnreadable
from app.db import commit_without_flush_wait, utcnow
from app.lifecycle.feed import FeedEvent, FeedPosition
from app.models import RecordEvent, Subscription, WebhookAttempt, WebhookDelivery
from app.rules.feed_audience import detail_for
from app.rules.webhook_retry import RetryPolicy, after_failure, is_failing
from app.services.delivery_heads import QueueKey, lock_heads, promote_next
from app.services.enterprise_feed import ShownEvent, audience_of, receipt_message

# PostgreSQL NOTIFY channels the delivery workers LISTEN on: new feed events (a trigger on record_event,
# migration 0014) and deliveries made due by hand (redeliver, replay, a resumed subscription).
FEED_CHANNEL = "sw_feed"
DELIVERY_CHANNEL = "sw_delivery"

JSON_TYPE = "application/json"
XML_TYPE = "application/xml"


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.webhook_backoff_base_s,
        settings.webhook_backoff_cap_s,
        settings.webhook_retry_for_s,
        settings.webhook_failing_after,
    )


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this worker, with everything needed to send it."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    exchange: str | None
    secrets: list[str]
    event_type: str
    body: bytes
    content_type: str
    # Why it cannot be sent (its signing secret does not open): the attempt fails at once, visibly.
    unsendable: str | None = None
    # Its queue (app/services/delivery_heads.py): the next of the key becomes ready when this one is done.
    ordering_key: str = ""

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.delivery_id.hex}"


def _claimable(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """A queue's head, pending and not leased to a worker now."""
    return (
        WebhookDelivery.status == "pending",
        WebhookDelivery.ready == true(),
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
    )


@functools.lru_cache(maxsize=4)
def _secret_box(keys: tuple[str, ...]) -> SecretBox:
    """One box per key list: deriving its AES keys (HKDF) once, not on every claim."""
    return SecretBox(keys)


async def claim_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    limit: int,
    in_flight: Mapping[uuid.UUID, int],
    allowances: Mapping[uuid.UUID, int],
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries across subscriptions — of each (subscription, record) only the
    head of its queue — at most its allowance per subscription (``allowances``, app/notify/pacing.py; for one
    not there, ``webhook_subscription_in_flight``) counting those this worker has in flight, so that one slow
    endpoint cannot take every slot. A candidate query, then the chosen locked SKIP LOCKED (on PostgreSQL)
    and leased: a few statements whatever the batch."""
    if limit <= 0:
        return []
    now = utcnow()
    # The heads alone (``ready``, app/services/delivery_heads.py), in the order of their index: with the LIMIT
    # the walk reads about as many rows as it takes. The subscriptions' columns come in a second query.
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.subscription_id,
            WebhookDelivery.event_id,
            WebhookDelivery.event_type,
            WebhookDelivery.ordering_key,
        )
        .where(
            *_claimable(now),  # the walk of ix_webhook_delivery_ready
            WebhookDelivery.next_attempt_at <= now,
            # A filter on the walk, not a join (which made the planner read every ready delivery and sort them).
            WebhookDelivery.subscription_id.not_in(select(Subscription.id).where(Subscription.status != "active")),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_tx, WebhookDelivery.event_id)
        .limit(limit * 4)
    )
    floor = settings.webhook_subscription_in_flight
    async with sessionmaker() as session, session.begin():
        # A lost lease (a server crash) only lets the delivery be claimed again: the same webhook-id.
        await commit_without_flush_wait(session)
        chosen: list[Row[Any]] = []
        counts = dict(in_flight)
        rows: Sequence[Row[Any]] = (await session.execute(query)).all()  # type: ignore[assignment]
        for row in rows:
            if len(chosen) >= limit:
                break
            if counts.get(row.subscription_id, 0) >= allowances.get(row.subscription_id, floor):
                continue
            counts[row.subscription_id] = counts.get(row.subscription_id, 0) + 1
            chosen.append(row)
        if not chosen:
            return []
        # Then leased, those still claimable (another worker may have taken one since), locked SKIP LOCKED in
        # the same statement: the candidates a subscription's limit turns away are never locked (each lock is a
        # write of its row).
        claimable = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_([row.id for row in chosen]), *_claimable(now))
            .with_for_update(skip_locked=True)
        )
        leased = set(
            await session.scalars(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(claimable))
                .values(lease_until=now + timedelta(seconds=settings.webhook_lease_s), updated_at=now)
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
        )
        taken = [row for row in chosen if row.id in leased]
        if not taken:
            return []
        subscriptions = {
            row.id: row
            for row in await session.execute(
                select(
                    Subscription.id,
                    Subscription.enterprise_code,
                    Subscription.url,
                    Subscription.exchange,
                    Subscription.format,
                    Subscription.secret,
                    Subscription.previous_secret,
                    Subscription.previous_secret_until,
                ).where(Subscription.id.in_({row.subscription_id for row in taken}))
            )
        }
        box = _secret_box(tuple(settings.webhook_secret_key_list()))
        claimed, died = await _bodies(session, taken, subscriptions, now, box)
    if died:  # after the commit, as its own step: the heads lock comes first in a transaction (delivery_heads)
        async with sessionmaker() as session, session.begin():
            await lock_heads(session, exclusive=False)
            await promote_next(session, died)
    return claimed


async def _bodies(
    session: AsyncSession,
    taken: list[Row[Any]],
    subscriptions: Mapping[uuid.UUID, Any],
    now: datetime,
    box: SecretBox,
) -> tuple[list[Claimed], list[QueueKey]]:
    """What to send for each claimed delivery; and the queues of those that died unsent (no longer visible)."""
    rows = await session.execute(
        select(
            RecordEvent.id,
            RecordEvent.tx,
            RecordEvent.kind,
            RecordEvent.record_id,
            RecordEvent.document_id,
            RecordEvent.actor,
            RecordEvent.at,
            RecordEvent.detail,
        ).where(RecordEvent.id.in_([row.event_id for row in taken]))
    )
    events = {
        row.id: FeedEvent(
            FeedPosition(row.tx, row.id), row.kind, row.record_id, row.document_id, row.actor, row.at, row.detail
        )
        for row in rows
    }
    audience = await audience_of(session, list(events.values()))
    secrets: dict[uuid.UUID, list[str] | str] = {}
    claimed, invisible = [], []
    for row in taken:
        subscription = subscriptions[row.subscription_id]
        event = events.get(row.event_id)
        view = audience.view(subscription.enterprise_code, event) if event is not None else None
        if event is None or view is None:
            # The enterprise is no longer party to the record (a document moved): nothing to send it.
            invisible.append(row)
            continue
        shown = ShownEvent(event, view, detail_for(view, event.detail))
        body, content_type = json_body(shown, row.event_type), JSON_TYPE
        if subscription.format == "ceb-xml":
            message = await receipt_message(session, shown)
            if message is not None:
                body, content_type = message, XML_TYPE
        if row.subscription_id not in secrets:
            secrets[row.subscription_id] = _open_secrets(box, subscription, now)
        opened = secrets[row.subscription_id]
        claimed.append(
            Claimed(
                row.id,
                row.subscription_id,
                subscription.url,
                subscription.exchange,
                opened if isinstance(opened, list) else [],
                row.event_type,
                body,
                content_type,
                unsendable=opened if isinstance(opened, str) else None,
                ordering_key=row.ordering_key,
            )
        )
    if invisible:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([row.id for row in invisible]))
            .values(status="dead", lease_until=None, last_error="the event is no longer visible to the enterprise")
            .execution_options(synchronize_session=False)
        )
    return claimed, [(row.subscription_id, row.ordering_key) for row in invisible]


def _open_secrets(box: SecretBox, subscription: Row[Any], now: datetime) -> list[str] | str:
    """The subscription's signing secrets (the previous one too during a rotation's overlap), or why they
    cannot be read — then the delivery is not sent unsigned: its attempt fails at once with that reason."""
    stored = [subscription.secret]
    if subscription.previous_secret and subscription.previous_secret_until and subscription.previous_secret_until > now:
        stored.append(subscription.previous_secret)
    try:
        return [box.open(value, str(subscription.id)) for value in stored]
    except SecretUnreadable as exc:
        return f"the signing secret cannot be read: {exc}"


def json_body(shown: ShownEvent, event_type: str) -> bytes:
    """Standard Webhooks payload shape: ``type``, ``timestamp``, ``data`` (the feed event as the pull feed
    shows it to the same enterprise)."""
    event = shown.event
    payload = {
        "type": event_type,
        "timestamp": event.at.isoformat(),
        "data": {
            "position": event.position.cursor(),
            "kind": event.kind,
            "recordId": str(event.record_id) if event.record_id else None,
            "documentId": str(event.document_id) if event.document_id else None,
            "at": event.at.isoformat(),
            "detail": shown.detail,
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class AttemptResult:
    claimed: Claimed
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        """A 2xx from a webhook endpoint; a broker's confirm (no status code) for AMQP."""
        if self.error is not None:
            return False
        return self.status_code is None or 200 <= self.status_code < 300


async def record_attempts(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    results: list[AttemptResult],
    rng: random.Random | None = None,
) -> None:
    """The attempts, their deliveries' new states and their subscriptions' health, in one transaction (the
    worker groups the outcomes that end while a recording is under way: one commit for many deliveries) of a
    few multi-row statements: the deliveries locked in id order (two workers recording at once cannot
    deadlock), the attempts inserted, the deliveries updated, and a subscription's row written only when its
    health changes."""
    now = utcnow()
    policy = retry_policy(settings)
    async with sessionmaker() as session, session.begin():
        # Lost in a server crash, an outcome is redone: the delivery is sent again (the same webhook-id).
        await commit_without_flush_wait(session)
        # Before the deliveries' locks: the order every transaction that changes a queue's head keeps.
        await lock_heads(session, exclusive=False)
        current = {
            row.id: _DeliveryState(row.attempts, row.first_failed_at)
            for row in await session.execute(
                select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.first_failed_at)
                .where(WebhookDelivery.id.in_({r.claimed.delivery_id for r in results}))
                .order_by(WebhookDelivery.id)
                .with_for_update()
            )
        }
        results = [r for r in results if r.claimed.delivery_id in current]  # the rest deleted meanwhile
        if not results:
            return
        attempts, states = [], {}
        for result in results:
            delivery_id = result.claimed.delivery_id
            states[delivery_id] = _after(policy, current[delivery_id], result, now, rng)
            current[delivery_id] = states[delivery_id]
            attempts.append(
                {
                    "delivery_id": delivery_id,
                    "at": now,
                    "status_code": result.status_code,
                    "error": result.error[:500] if result.error else None,
                    "duration_ms": result.duration_ms,
                }
            )
        await session.execute(insert(WebhookAttempt), attempts)
        await session.execute(
            _UPDATE_DELIVERY, [{"b_id": delivery_id, **state.columns(now)} for delivery_id, state in states.items()]
        )
        await _record_health(session, policy, results, now)
        await promote_next(
            session,
            (
                (r.claimed.subscription_id, r.claimed.ordering_key)
                for r in results
                if states[r.claimed.delivery_id].status != "pending"
            ),
        )


@dataclass(frozen=True)
class _DeliveryState:
    attempts: int
    first_failed_at: datetime | None
    status: str = "pending"
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None

    def columns(self, now: datetime) -> dict[str, Any]:
        return {
            "b_attempts": self.attempts,
            "b_status": self.status,
            "b_next_attempt_at": self.next_attempt_at,
            "b_last_status_code": self.last_status_code,
            "b_last_error": self.last_error,
            "b_first_failed_at": self.first_failed_at,
            "b_delivered_at": now if self.status == "delivered" else None,
            "b_updated_at": now,
        }


_table = cast(Table, WebhookDelivery.__table__)


def _kept_unless_given(column: str) -> ColumnElement[Any]:
    """The column's new value where the row's parameter has one, else its value as it is."""
    return func.coalesce(bindparam(f"b_{column}", type_=_table.c[column].type), _table.c[column])


# One statement run for every delivery of a group (executemany): the row's whole new state, lease cleared.
_UPDATE_DELIVERY = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"))
    .values(
        attempts=bindparam("b_attempts"),
        status=bindparam("b_status"),
        next_attempt_at=_kept_unless_given("next_attempt_at"),
        lease_until=None,
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        first_failed_at=bindparam("b_first_failed_at"),
        delivered_at=_kept_unless_given("delivered_at"),
        updated_at=bindparam("b_updated_at"),
    )
)


def _after(
    policy: RetryPolicy, before: _DeliveryState, result: AttemptResult, now: datetime, rng: random.Random | None
) -> _DeliveryState:
    """A delivery's state after one attempt: delivered, or retried after a backoff, or dead past the window."""
    attempts = before.attempts + 1
    if result.delivered:
        return _DeliveryState(attempts, before.first_failed_at, "delivered", None, result.status_code, None)
    error = (result.error or f"HTTP {result.status_code}")[:500]
    first_failed_at = before.first_failed_at or now
    plan = after_failure(policy, attempts, first_failed_at, now, rng)
    status = "dead" if plan.outcome == "dead" else "pending"
    return _DeliveryState(attempts, first_failed_at, status, plan.next_attempt_at, result.status_code, error)


async def _record_health(
    session: AsyncSession, policy: RetryPolicy, results: list[AttemptResult], now: datetime
) -> None:
    """Each subscription's consecutive failures after the group's outcomes in order: a success clears them
    (a write only if there was something to clear), each failure adds one and says why."""
    cleared: set[uuid.UUID] = set()
    failures: dict[uuid.UUID, int] = {}
    last_error: dict[uuid.UUID, str] = {}
    for result in results:
        subscription_id = result.claimed.subscription_id
        if result.delivered:
            cleared.add(subscription_id)
            failures.pop(subscription_id, None)
        else:
            failures[subscription_id] = failures.get(subscription_id, 0) + 1
            last_error[subscription_id] = (result.error or f"HTTP {result.status_code}")[:500]
    only_cleared = cleared - failures.keys()
    if only_cleared:
        await session.execute(
            update(Subscription)
            .where(
                Subscription.id.in_(only_cleared),
                or_(Subscription.consecutive_failures != 0, Subscription.failing_since.is_not(None)),
            )
            .values(consecutive_failures=0, failing_since=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    if not failures:
        return
    rows = await session.execute(
        select(Subscription.id, Subscription.consecutive_failures, Subscription.failing_since)
        .where(Subscription.id.in_(failures))
        .order_by(Subscription.id)
        .with_for_update()
    )
    for subscription_id, consecutive, failing_since in rows.all():
        count = failures[subscription_id] + (0 if subscription_id in cleared else consecutive)
        if subscription_id in cleared:
            failing_since = None
        if is_failing(policy, count) and failing_since is None:
            failing_since = now
        await session.execute(
            update(Subscription)
            .where(Subscription.id == subscription_id)
            .values(
                consecutive_failures=count,
                failing_since=failing_since,
                last_error=last_error[subscription_id],
                last_error_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
