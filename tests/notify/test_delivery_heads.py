"""The head of each delivery queue (``webhook_delivery.ready``, app/services/delivery_heads.py): after every change
to which deliveries are pending — the fan-out, failed and successful attempts, a redelivery that puts an earlier
event back ahead of a queue, a replay, a pause and a resume — a pending delivery is ready exactly when it is the
earliest pending one of its (subscription, ordering_key) queue and the subscription is active. The claim walks
the ready ones alone: one left unready would never go out, one ready too many would go out beside its queue's
head."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from app.config import Settings
from app.models import Subscription, WebhookDelivery
from app.services.fanout import fan_out
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.receiver import receiving
from tests.notify.test_webhook_delivery import FAST_RETRIES, PLATFORM, drain, positions, subscribe, worker_of


async def heads(app: FastAPI) -> tuple[set[Any], set[Any]]:
    """(the ready pending deliveries, the earliest pending delivery of each queue of an active subscription)."""
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    WebhookDelivery.id,
                    WebhookDelivery.subscription_id,
                    WebhookDelivery.ordering_key,
                    WebhookDelivery.ready,
                    Subscription.status,
                )
                .join(Subscription, Subscription.id == WebhookDelivery.subscription_id)
                .where(WebhookDelivery.status == "pending")
                .order_by(WebhookDelivery.event_tx, WebhookDelivery.event_id)
            )
        ).all()
    earliest: dict[tuple[Any, str], Any] = {}
    for row in rows:
        if row.status == "active":
            earliest.setdefault((row.subscription_id, row.ordering_key), row.id)
    return {row.id for row in rows if row.ready}, set(earliest.values())


async def assert_exact_heads(app: FastAPI) -> int:
    ready, earliest = await heads(app)
    assert ready == earliest
    return len(earliest)


async def test_only_the_earliest_pending_delivery_of_each_queue_is_ready_through_every_change(
    settings: Settings,
) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving(fail_next=10**6) as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        base = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
        for _ in range(2):
            for answer in await post_triple(http, parties, purchase()):
                assert answer.status_code == 201, answer.text
        # Two records, each with several events queued behind its first: one head per queue (the documents'
        # receipts before their record existed have queues of their own). The matcher runs beside this test,
        # so the events are fanned out as they come.
        for _ in range(1000):
            await fan_out(app.state.sessionmaker)
            queues = await assert_exact_heads(app)
            if queues >= 2:
                break
            await asyncio.sleep(0.01)
        assert queues >= 2

        async with worker_of(app) as worker:
            # Every attempt fails: the heads stay pending (retried later), nothing behind them moves up.
            for _ in range(3):
                await worker.run_once()
                await worker.settle()
                await assert_exact_heads(app)
            assert receiver.refused
            assert not receiver.arrivals

            # Paused, the subscription's queues have no head (claims do not walk past them); resumed, they do.
            paused = await http.patch(base, json={"status": "paused"}, headers=parties.platform)
            assert paused.status_code == 200, paused.text
            assert await assert_exact_heads(app) == 0
            await fan_out(app.state.sessionmaker)
            assert await assert_exact_heads(app) == 0
            resumed = await http.patch(base, json={"status": "active"}, headers=parties.platform)
            assert resumed.status_code == 200, resumed.text
            assert await assert_exact_heads(app) >= 2

            receiver.fail_next = 0
            await drain(app, worker)
            await assert_exact_heads(app)
            got = receiver.unique()
            assert len(got) >= 8
            by_record: dict[str, list[tuple[int, int]]] = {}
            for arrival in got:
                by_record.setdefault(arrival.payload["data"]["recordId"], []).extend(positions([arrival]))
            assert all(p == sorted(p) for p in by_record.values())

            # An earlier event of a record sent again while a later one of the same record waits: the earlier
            # one is the queue's head now, the later one waits behind it.
            record_id = next(r for r in by_record if r)
            of_record = [a for a in got if a.payload["data"]["recordId"] == record_id]
            assert len(of_record) >= 2
            for arrival in (of_record[-1], of_record[0]):
                again = await http.post(
                    f"{base}/deliveries/{arrival.webhook_id[4:]}/redeliver", headers=parties.platform
                )
                assert again.status_code == 200, again.text
                await assert_exact_heads(app)
            replayed = await http.post(
                f"{base}/replay",
                json={"after": "0.0", "until": "{}.{}".format(*max(positions(got)))},
                headers=parties.platform,
            )
            assert replayed.status_code == 200, replayed.text
            assert await assert_exact_heads(app) >= 2
            await drain(app, worker)
            assert await assert_exact_heads(app) == 0
        assert len(receiver.unique()) == len(got)
