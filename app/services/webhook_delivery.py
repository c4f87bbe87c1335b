"""Webhook deliveries as a queue: claim the due ones (SKIP LOCKED on PostgreSQL), build each body as the
subscription's enterprise may see the event, and record each attempt's outcome. No network call happens here:
the delivery worker (app/notify/worker.py) sends between a claim and its record, outside any transaction.

Order per record: a delivery is claimable only while no earlier event of the same record (its
``ordering_key``) is still pending for that subscription — event N+1 waits until N is delivered or dead.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Exists, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.config import Settings
from app.crypto.secret_box import SecretBox, SecretUnreadable
from app.db import utcnow
from app.lifecycle.feed import FeedEvent, FeedPosition
from app.models import RecordEvent, Subscription, WebhookAttempt, WebhookDelivery
from app.rules.feed_audience import detail_for
from app.rules.webhook_retry import RetryPolicy, after_failure, is_failing
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

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.delivery_id.hex}"


def _earlier_pending() -> Exists:
    earlier = aliased(WebhookDelivery)
    return exists().where(
        earlier.subscription_id == WebhookDelivery.subscription_id,
        earlier.ordering_key == WebhookDelivery.ordering_key,
        earlier.status == "pending",
        or_(
            earlier.event_tx < WebhookDelivery.event_tx,
            and_(earlier.event_tx == WebhookDelivery.event_tx, earlier.event_id < WebhookDelivery.event_id),
        ),
    )


async def claim_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    limit: int,
    in_flight: Mapping[uuid.UUID, int],
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries, at most ``webhook_subscription_in_flight`` per subscription
    counting those this worker has in flight, so that one slow endpoint cannot take every slot."""
    if limit <= 0:
        return []
    now = utcnow()
    query = (
        select(WebhookDelivery, Subscription)
        .join(Subscription, Subscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            Subscription.status == "active",
            ~_earlier_pending(),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_tx, WebhookDelivery.event_id)
        .limit(limit * 4)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    per_subscription = settings.webhook_subscription_in_flight
    async with sessionmaker() as session, session.begin():
        taken: list[tuple[WebhookDelivery, Subscription]] = []
        counts = dict(in_flight)
        for delivery, subscription in (await session.execute(query)).all():
            if len(taken) >= limit:
                break
            if counts.get(subscription.id, 0) >= per_subscription:
                continue
            counts[subscription.id] = counts.get(subscription.id, 0) + 1
            taken.append((delivery, subscription))
        if not taken:
            return []
        lease = now + timedelta(seconds=settings.webhook_lease_s)
        for delivery, _ in taken:
            delivery.lease_until = lease
            delivery.updated_at = now
        return await _bodies(session, taken, now, SecretBox(settings.webhook_secret_key_list()))


async def _bodies(
    session: AsyncSession, taken: list[tuple[WebhookDelivery, Subscription]], now: datetime, box: SecretBox
) -> list[Claimed]:
    rows = await session.scalars(select(RecordEvent).where(RecordEvent.id.in_([d.event_id for d, _ in taken])))
    events = {
        row.id: FeedEvent(
            FeedPosition(row.tx, row.id), row.kind, row.record_id, row.document_id, row.actor, row.at, row.detail
        )
        for row in rows
    }
    audience = await audience_of(session, list(events.values()))
    claimed = []
    for delivery, subscription in taken:
        event = events.get(delivery.event_id)
        view = audience.view(subscription.enterprise_code, event) if event is not None else None
        if event is None or view is None:
            # The enterprise is no longer party to the record (a document moved): nothing to send it.
            delivery.status, delivery.lease_until = "dead", None
            delivery.last_error = "the event is no longer visible to the enterprise"
            continue
        shown = ShownEvent(event, view, detail_for(view, event.detail))
        body, content_type = json_body(shown, delivery.event_type), JSON_TYPE
        if subscription.format == "ceb-xml":
            message = await receipt_message(session, shown)
            if message is not None:
                body, content_type = message, XML_TYPE
        stored = [subscription.secret]
        if (
            subscription.previous_secret
            and subscription.previous_secret_until
            and subscription.previous_secret_until > now
        ):
            stored.append(subscription.previous_secret)
        try:
            secrets = [box.open(value, str(subscription.id)) for value in stored]
        except SecretUnreadable as exc:
            # Not sent unsigned: the lease runs out and it is tried again once the keys are set right.
            delivery.last_error = f"the signing secret cannot be read: {exc}"
            continue
        claimed.append(
            Claimed(
                delivery.id,
                subscription.id,
                subscription.url,
                subscription.exchange,
                secrets,
                delivery.event_type,
                body,
                content_type,
            )
        )
    return claimed


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
    worker groups the outcomes that end while a recording is under way: one commit for many deliveries).
    Rows are locked in id order, so that two workers recording at once cannot deadlock."""
    now = utcnow()
    policy = retry_policy(settings)
    async with sessionmaker() as session, session.begin():
        deliveries = {
            d.id: d
            for d in await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.id.in_([r.claimed.delivery_id for r in results]))
                .order_by(WebhookDelivery.id)
                .with_for_update()
            )
        }
        subscriptions = {
            s.id: s
            for s in await session.scalars(
                select(Subscription)
                .where(Subscription.id.in_({r.claimed.subscription_id for r in results}))
                .order_by(Subscription.id)
                .with_for_update()
            )
        }
        for result in results:
            delivery = deliveries.get(result.claimed.delivery_id)
            subscription = subscriptions.get(result.claimed.subscription_id)
            if delivery is None or subscription is None:
                continue  # deleted with its subscription meanwhile
            _record(session, policy, delivery, subscription, result, now, rng)


def _record(
    session: AsyncSession,
    policy: RetryPolicy,
    delivery: WebhookDelivery,
    subscription: Subscription,
    result: AttemptResult,
    now: datetime,
    rng: random.Random | None,
) -> None:
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            at=now,
            status_code=result.status_code,
            error=result.error[:500] if result.error else None,
            duration_ms=result.duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.lease_until = None
    delivery.last_status_code = result.status_code
    delivery.updated_at = now
    if result.delivered:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
        subscription.consecutive_failures, subscription.failing_since = 0, None
        return
    error = (result.error or f"HTTP {result.status_code}")[:500]
    delivery.last_error = error
    delivery.first_failed_at = delivery.first_failed_at or now
    plan = after_failure(policy, delivery.attempts, delivery.first_failed_at, now, rng)
    if plan.outcome == "dead":
        delivery.status = "dead"
    else:
        assert plan.next_attempt_at is not None
        delivery.next_attempt_at = plan.next_attempt_at
    subscription.consecutive_failures += 1
    subscription.last_error, subscription.last_error_at = error, now
    if is_failing(policy, subscription.consecutive_failures) and subscription.failing_since is None:
        subscription.failing_since = now
