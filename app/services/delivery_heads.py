"""The head of each webhook delivery queue (``webhook_delivery.ready``).

A subscription's deliveries with the same ``ordering_key`` (a record's events) go out one after another, in feed
order. ``ready`` marks the head of each such queue — its earliest pending delivery — so that the claim
(app/services/webhook_delivery.py) walks the heads alone, in due order, and reads about as many rows as it
takes. It used to find the heads by testing every pending delivery for an earlier one: 22 ms a claim with
10,000 pending, growing with the backlog, and worst when a failing endpoint's queues pile up behind their heads.

The invariant — a pending delivery is ready exactly when it is the earliest pending one of its queue and its
subscription is active — is kept by every change to which deliveries are pending:
- the fan-out inserts new deliveries unready, then marks the earliest pending one of each queue it wrote to;
- a delivery that stops being pending (delivered or dead) is followed by its queue's next (``promote_next``);
- a redelivery or a replay, which may put an earlier event back ahead of a queue's head, works its queues out
  again (``recompute``);
- pausing a subscription unmarks its heads, resuming marks them again (``pause_heads``, ``resume_heads``).

Two of these at once on the same queue could each miss the other's uncommitted change (a new delivery left
unready behind a head that has just gone). A PostgreSQL advisory lock orders them (``lock_heads``): the fan-out,
a redelivery and a replay take it exclusively, a promotion shared, each before it locks or reads any delivery,
so a change waits for the one under way and its statements then see it committed. Promotions do not exclude
each other: a queue has one head in flight. (It was the cursor row FOR SHARE at first: every shared lock of a
row rewrites it, 1.35 ms a promotion.) SQLite runs one writing transaction at a time and needs no lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, false, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.models import Subscription, WebhookDelivery

# Advisory lock key of the heads (ASCII "SWHD").
HEADS_LOCK = 0x5357_4844
# Queues recomputed per statement.
_CHUNK = 100

QueueKey = tuple[uuid.UUID, str]  # (subscription_id, ordering_key)


async def lock_heads(session: AsyncSession, *, exclusive: bool) -> None:
    """Until the transaction ends: exclusively to change which deliveries are pending ahead of others (fan-out,
    redelivery, replay), shared to promote after deliveries stopped being pending."""
    if session.get_bind().dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await session.execute(text(f"SELECT {function}(:key)"), {"key": HEADS_LOCK})


def _pending_of(key: QueueKey) -> Any:
    subscription_id, ordering_key = key
    return (
        WebhookDelivery.subscription_id == subscription_id,
        WebhookDelivery.ordering_key == ordering_key,
        WebhookDelivery.status == "pending",
    )


_table = cast(Table, WebhookDelivery.__table__)
_head = aliased(_table)
_subscription = cast(Table, Subscription.__table__)
# Run once per queue (executemany): its earliest pending delivery, made ready if it is not yet.
_PROMOTE = (
    update(_table)
    .where(
        _table.c.id
        == select(_head.c.id)
        .where(
            _head.c.subscription_id == bindparam("queue_subscription"),
            _head.c.ordering_key == bindparam("queue_key"),
            _head.c.status == "pending",
        )
        .order_by(_head.c.event_tx, _head.c.event_id)
        .limit(1)
        .scalar_subquery(),
        _table.c.ready == false(),
        # A paused subscription's queues have no head: the claim does not walk past them (pause_heads).
        exists().where(_subscription.c.id == bindparam("queue_subscription"), _subscription.c.status == "active"),
    )
    .values(ready=True)
)


async def promote_next(session: AsyncSession, keys: Iterable[QueueKey]) -> None:
    """Mark ready the earliest pending delivery of each queue: after one of its deliveries stopped being pending,
    or new ones were inserted unready (whether or not an insert was skipped as a replay's duplicate). The
    caller holds the heads lock (``lock_heads``, taken before it locked any delivery)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return
    await session.execute(_PROMOTE, [{"queue_subscription": s, "queue_key": k} for s, k in wanted])


async def recompute(session: AsyncSession, subscription_id: uuid.UUID, ordering_keys: Iterable[str]) -> None:
    """Work out the heads of a subscription's queues again, after deliveries were made pending anywhere in
    them. The caller holds the heads lock exclusively (taken before it locked any delivery)."""
    keys = list(dict.fromkeys(ordering_keys))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.ordering_key.in_(chunk),
                WebhookDelivery.status == "pending",
            )
            .values(ready=False)
            .execution_options(synchronize_session=False)
        )
    await promote_next(session, ((subscription_id, key) for key in keys))


async def pause_heads(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """A subscription paused: none of its deliveries is a head until it is resumed, so that claims do not walk
    past a paused subscription's queues (a pause of hours piles up one head per record). The caller holds the
    heads lock exclusively."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.ready == true())
        .values(ready=False)
        .execution_options(synchronize_session=False)
    )


async def resume_heads(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """A subscription resumed (its status already active in this transaction): the head of each of its queues.
    The caller holds the heads lock exclusively."""
    keys = await session.scalars(
        select(WebhookDelivery.ordering_key)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.status == "pending")
        .distinct()
    )
    await promote_next(session, ((subscription_id, key) for key in keys.all()))
