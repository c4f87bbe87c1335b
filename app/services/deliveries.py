"""A subscription's deliveries as the enterprise and admins see them: the list, redelivery (重推) of one, and
replay of a cursor range or time range (each event keeps its delivery, so its ``webhook-id``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.lifecycle.feed import FeedPosition, read_feed
from app.models import RecordEvent, WebhookDelivery
from app.pg_listen import notify
from app.rules.feed_audience import event_type
from app.schemas.subscriptions import DeliveryOut, DeliveryPage, ReplayRequest
from app.services.delivery_heads import lock_heads, recompute
from app.services.enterprise_feed import audience_of, party_events
from app.services.fanout import insert_deliveries, ordering_key
from app.services.subscriptions import get_subscription
from app.services.webhook_delivery import DELIVERY_CHANNEL

REPLAY_MAX = 10_000


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        subscriptionId=d.subscription_id,
        eventPosition=FeedPosition(d.event_tx, d.event_id).cursor(),
        eventType=d.event_type,
        status=d.status,
        attempts=d.attempts,
        nextAttemptAt=d.next_attempt_at if d.status == "pending" else None,
        lastStatusCode=d.last_status_code,
        lastError=d.last_error,
        deliveredAt=d.delivered_at,
        createdAt=d.created_at,
    )


async def list_deliveries(
    session: AsyncSession, code: str, subscription_id: uuid.UUID, status: str | None, after: str | None, limit: int
) -> DeliveryPage:
    """In feed order, from the feed cursor ``after``."""
    await get_subscription(session, code, subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if after:
        position = FeedPosition.parse(after)
        query = query.where(
            or_(
                WebhookDelivery.event_tx > position.tx,
                and_(WebhookDelivery.event_tx == position.tx, WebhookDelivery.event_id > position.id),
            )
        )
    rows = list(
        await session.scalars(query.order_by(WebhookDelivery.event_tx, WebhookDelivery.event_id).limit(limit + 1))
    )
    page = rows[:limit]
    return DeliveryPage(
        items=[delivery_out(d) for d in page],
        nextCursor=FeedPosition(page[-1].event_tx, page[-1].event_id).cursor() if len(rows) > limit else None,
    )


def _again(delivery: WebhookDelivery) -> None:
    now = utcnow()
    delivery.status, delivery.next_attempt_at, delivery.lease_until = "pending", now, None
    delivery.first_failed_at = None
    delivery.updated_at = now


async def redeliver(
    session: AsyncSession, code: str, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Send the event again (delivered, dead or waiting), with the same ``webhook-id``, as soon as possible."""
    await get_subscription(session, code, subscription_id)
    await lock_heads(session, exclusive=True)  # before the delivery's lock (app/services/delivery_heads.py)
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription_id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id} of subscription {subscription_id}", code="DELIVERY_NOT_FOUND")
    _again(delivery)
    await session.flush()
    await recompute(session, subscription_id, [delivery.ordering_key])
    await notify(session, DELIVERY_CHANNEL)
    return delivery


async def replay(session: AsyncSession, code: str, subscription_id: uuid.UUID, data: ReplayRequest) -> int:
    """Queue again every event of the range the subscription would have received (at most ``REPLAY_MAX``)."""
    subscription = await get_subscription(session, code, subscription_id)
    await lock_heads(session, exclusive=True)  # before any delivery's lock (app/services/delivery_heads.py)
    by_cursor = data.after is not None or data.until is not None
    by_time = data.since is not None or data.before is not None
    if by_cursor == by_time:
        raise Unprocessable(
            "Replay a cursor range (after, until) or a time range (since, before)",
            code="REPLAY_RANGE_INVALID",
            errors=[{"path": "after", "message": "give a cursor range or a time range", "type": "range"}],
        )
    start = FeedPosition.parse(data.after) if data.after else FeedPosition(0, 0)
    only = party_events(code)
    if data.until:
        end = FeedPosition.parse(data.until)
        only = and_(only, or_(RecordEvent.tx < end.tx, and_(RecordEvent.tx == end.tx, RecordEvent.id <= end.id)))
    if data.since is not None:
        only = and_(only, RecordEvent.at >= _aware(data.since))
    if data.before is not None:
        only = and_(only, RecordEvent.at < _aware(data.before))
    events = await read_feed(session, start, REPLAY_MAX, only=only)
    audience = await audience_of(session, events)
    chosen = [
        e
        for e in events
        if (kind := event_type(e.kind, e.detail)) is not None
        and kind in subscription.events
        and audience.view(code, e) is not None
    ]
    now = utcnow()
    await insert_deliveries(
        session,
        [
            {
                "id": uuid.uuid4(),
                "subscription_id": subscription.id,
                "event_tx": e.position.tx,
                "event_id": e.position.id,
                "event_type": event_type(e.kind, e.detail),
                "ordering_key": ordering_key(e),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for e in chosen
        ],
    )
    if chosen:
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription.id,
                WebhookDelivery.event_id.in_([e.position.id for e in chosen]),
            )
            .values(status="pending", next_attempt_at=now, lease_until=None, first_failed_at=None, updated_at=now)
        )
        await recompute(session, subscription.id, (ordering_key(e) for e in chosen))
        await notify(session, DELIVERY_CHANNEL)
    return len(chosen)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise Unprocessable(
            "Times need a UTC offset", code="REPLAY_RANGE_INVALID", errors=[{"path": "since", "message": "naive"}]
        )
    return moment
