"""The delivery worker on PostgreSQL sleeps until a NOTIFY: with its poll a minute away, only the feed's NOTIFY
(the trigger on record_event) and a redelivery's NOTIFY can explain a delivery within seconds."""

from __future__ import annotations

import asyncio

import pytest

from app.config import Settings
from app.notify.worker import DeliveryWorker
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.receiver import Receiver, receiving
from tests.notify.test_webhook_delivery import FAST_RETRIES, PLATFORM, subscribe, worker_of

pytestmark = pytest.mark.postgres_only

POLL_S = 60.0
# A generous bound that is still half the poll: a worker that missed the NOTIFY fails it.
BOUND_S = POLL_S / 2


async def idle_and_listening(worker: DeliveryWorker, rounds: list[int]) -> None:
    """Until the worker has LISTENed and finished a round that found nothing to do (it now sleeps)."""
    async with asyncio.timeout(BOUND_S):
        while True:
            if worker.listening() and rounds and rounds[-1] == 0 and worker.in_flight == 0:
                return
            await asyncio.sleep(0.01)


async def arrived(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(BOUND_S):
        while True:
            if len(receiver.arrivals) >= count:
                return
            await asyncio.sleep(0.02)


async def test_the_delivery_worker_wakes_on_notify_not_on_its_poll(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        async with worker_of(app, webhook_poll_s=POLL_S) as worker:
            rounds: list[int] = []
            run_once = worker.run_once

            async def counted_round() -> int:
                rounds.append(await run_once())
                return rounds[-1]

            worker.run_once = counted_round  # type: ignore[method-assign]
            running = asyncio.create_task(worker.run())
            try:
                await idle_and_listening(worker, rounds)
                for answer in await post_triple(http, parties, purchase()):
                    assert answer.status_code == 201, answer.text
                await arrived(receiver, 5)

                # A redelivery by hand wakes it too (its own NOTIFY: no feed event is written).
                await idle_and_listening(worker, rounds)
                sent = len(receiver.arrivals)
                first = receiver.arrivals[0].webhook_id
                base = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
                again = await http.post(f"{base}/deliveries/{first[4:]}/redeliver", headers=parties.platform)
                assert again.status_code == 200, again.text
                await arrived(receiver, sent + 1)
                assert receiver.arrivals[-1].webhook_id == first
            finally:
                worker.stop()
                await asyncio.wait_for(running, timeout=10)
