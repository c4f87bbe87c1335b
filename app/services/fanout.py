"""The fan-out stage: reads the feed from its own stored cursor and writes one ``webhook_delivery`` per
(subscription, event) the subscription's enterprise may see, in the same transaction that advances the
cursor — so an event is fanned out once, never lost and never doubled, whatever crashes where.

One fan-out runs at a time (the cursor row is locked; a second one on PostgreSQL waits on it).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import commit_without_flush_wait, utcnow
from app.lifecycle.feed import FeedEvent, FeedPosition, feed_head, read_feed
from app.models import FeedCursor, Subscription, WebhookDelivery
from app.rules.feed_audience import event_type
from app.services.delivery_heads import lock_heads, promote_next
from app.services.enterprise_feed import Audience, audience_of

FANOUT_BATCH = 500
FANOUT_CURSOR = "webhook_fanout"  # its row in feed_cursor


def ordering_key(event: FeedEvent) -> str:
    """Deliveries with the same key go out one after another: a record's events, or (before it has a record)
    a document's, or else the event on its own."""
    if event.record_id is not None:
        return f"r:{event.record_id}"
    if event.document_id is not None:
        return f"d:{event.document_id}"
    return f"e:{event.position.id}"


def deliveries_for(
    events: Sequence[FeedEvent], subscriptions: Sequence[Subscription], audience: Audience
) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        kind = event_type(event.kind, event.detail)
        if kind is None:
            continue
        for subscription in subscriptions:
            if kind not in subscription.events or event.at < subscription.created_at:
                continue
            if audience.view(subscription.enterprise_code, event) is None:
                continue
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "subscription_id": subscription.id,
                    "event_tx": event.position.tx,
                    "event_id": event.position.id,
                    "event_type": kind,
                    "ordering_key": ordering_key(event),
                    "status": "pending",
                    "ready": False,  # until promote_next finds it the earliest pending of its key
                    "attempts": 0,
                    "next_attempt_at": utcnow(),
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
            )
    return rows


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert, leaving alone a (subscription, event) that already has its delivery (a replay got there first)."""
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(WebhookDelivery).on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
    for start in range(0, len(rows), 1000):
        await session.execute(statement, rows[start : start + 1000])


async def _cursor(session: AsyncSession) -> FeedCursor:
    """The fan-out's cursor row, locked FOR UPDATE (created at first use)."""
    query = select(FeedCursor).where(FeedCursor.name == FANOUT_CURSOR).with_for_update()
    cursor = await session.scalar(query)
    if cursor is None:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        await session.execute(
            dialect.insert(FeedCursor).values(name=FANOUT_CURSOR, tx=0, event_id=0).on_conflict_do_nothing()
        )
        cursor = await session.scalar(query)
        assert cursor is not None
    return cursor


async def fan_out(sessionmaker: async_sessionmaker[AsyncSession], batch: int = FANOUT_BATCH) -> int:
    """One batch of feed events fanned out to the subscriptions; returns how many events were read. With no
    subscription at all the cursor moves to the feed's head without reading the events (returns 1 if it
    moved): a service nobody subscribes to read every event here, and a subscription created later still
    starts from its creation."""
    async with sessionmaker() as session, session.begin():
        cursor = await _cursor(session)
        position = FeedPosition(cursor.tx, cursor.event_id)
        subscriptions = list(await session.scalars(select(Subscription)))
        if not subscriptions:
            head = await feed_head(session)
            if head is None or head <= position:
                return 0
            cursor.tx, cursor.event_id, cursor.updated_at = head.tx, head.id, utcnow()
            return 1
        events = await read_feed(session, position, batch)
        if not events:
            return 0
        audience = await audience_of(session, events)
        rows = deliveries_for(events, subscriptions, audience)
        await lock_heads(session, exclusive=True)
        await commit_without_flush_wait(session)  # lost in a server crash, cursor and rows are redone together
        await insert_deliveries(session, rows)
        await promote_next(session, ((row["subscription_id"], row["ordering_key"]) for row in rows))
        cursor.tx, cursor.event_id = events[-1].position.tx, events[-1].position.id
        cursor.updated_at = utcnow()
    return len(events)
