"""The notify stage under faults, on PostgreSQL: a receiver down for a while then back, the delivery worker
SIGKILLed mid-run, a receiver that hangs next to a healthy one, and a burst to one subscription. Every row
asserts (every event delivered, in order per record, duplicates only with the same webhook-id) before it
records its figure."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.models import Enterprise, MatchRecord, RecordEvent, WebhookDelivery
from bench.procs import free_port
from tests.conftest import serving, soak_level
from tests.factories import file_parties, post_triple, purchase
from tests.figures import record_figure
from tests.live import clean_env
from tests.notify.receiver import Receiver, receiving
from tests.notify.test_webhook_delivery import (
    FAST_RETRIES,
    PLATFORM,
    pending,
    stuck_and_healthy,
    subscribe,
    worker_of,
)

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(1200)]

DOWN_S = {"quick": 5.0, "full": 60.0}
PURCHASES = {"quick": 4, "full": 20}
BURST = {"quick": 1_000, "full": 10_000}


def in_order_per_record(receiver: Receiver) -> bool:
    by_record: dict[str, list[tuple[int, ...]]] = {}
    for arrival in receiver.unique():
        data = arrival.payload["data"]
        position = tuple(int(p) for p in data["position"].split("."))
        by_record.setdefault(str(data["recordId"] or data["documentId"]), []).append(position)
    return all(p == sorted(p) for p in by_record.values())


async def settled(app: FastAPI, receiver: Receiver, at_least: int, timeout_s: float) -> int:
    """Until ``at_least`` deliveries exist, none is pending and the receiver holds each; returns their count."""
    async with asyncio.timeout(timeout_s):
        while True:
            made = await pending(app, "pending", "delivered", "dead")
            if made >= at_least and await pending(app) == 0 and len(receiver.unique()) >= made:
                return made
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_worker(app: FastAPI, **overrides: Any) -> AsyncIterator[None]:
    async with worker_of(app, **overrides) as worker:
        task = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=30)


async def spawn_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    """``sw deliver`` (its code: ``python -m app.notify.worker``) as a process of its own."""
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "app.notify.worker", env=env)


async def purchases(http: Any, parties: Any, count: int) -> None:
    for _ in range(count):
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text


async def test_a_receiver_down_then_back_gets_every_event_once_in_order(settings: Settings) -> None:
    down_s = DOWN_S[soak_level()]
    port = free_port()
    async with serving(settings, **(FAST_RETRIES | {"webhook_backoff_cap_s": 1.0})) as (app, http):
        parties = await file_parties(http)
        await subscribe(http, parties.platform, f"http://127.0.0.1:{port}/hooks")
        async with running_worker(app):
            await purchases(http, parties, PURCHASES[soak_level()])
            await asyncio.sleep(down_s)  # nothing listens on the port meanwhile: every attempt fails
            assert await pending(app) > 0
            back = time.monotonic()
            async with receiving(port=port) as receiver:
                made = await settled(app, receiver, 5 * PURCHASES[soak_level()], timeout_s=300)
                caught_up_s = time.monotonic() - back
        unique = receiver.unique()
        assert len(unique) == made
        assert await pending(app, "dead") == 0
        assert in_order_per_record(receiver)
        assert len(receiver.arrivals) == len(unique)  # each once: the failures never reached it
    record_figure(
        f"webhook receiver down {down_s:g} s, then back ({made} events)",
        f"all delivered once, in order; caught up {caught_up_s:.1f} s after it came back",
        "all, once, in order",
    )


async def test_the_delivery_worker_sigkilled_mid_run_loses_nothing(settings: Settings, database_url: str) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        await subscribe(http, parties.platform, receiver.url)
        await purchases(http, parties, PURCHASES[soak_level()])
        wanted = 5 * PURCHASES[soak_level()]
        env = clean_env(
            SW_DATABASE_URL=database_url, SW_WEBHOOK_ALLOW_PRIVATE="true", SW_WEBHOOK_LEASE_S="1",
            SW_WEBHOOK_POLL_S="0.05",
        )  # fmt: skip
        kills = 0
        async with asyncio.timeout(300):
            while kills < 3 and len(receiver.unique()) < wanted:
                worker = await spawn_worker(env)
                seen = len(receiver.arrivals)
                while True:  # after its first delivery (or as it is, if it ended)
                    if len(receiver.arrivals) > seen or worker.returncode is not None:
                        break
                    await asyncio.sleep(0.01)
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGKILL)
                await worker.wait()
                kills += 1
            worker = await spawn_worker(env)  # the last incarnation is left to finish
            try:
                made = await settled(app, receiver, wanted, timeout_s=240)
            finally:
                worker.terminate()
                await worker.wait()
        ids = {a.webhook_id for a in receiver.arrivals}
        async with app.state.sessionmaker() as session:
            delivery_ids = {f"msg_{d.hex}" for d in await session.scalars(select(WebhookDelivery.id))}
        assert ids == delivery_ids  # every delivery arrived; a redelivery only under its own webhook-id
        assert in_order_per_record(receiver)
    record_figure(
        f"delivery worker SIGKILLed mid-run ({kills} kills, {made} events)",
        f"lost 0; arrivals {len(receiver.arrivals)} for {made} events (redeliveries same webhook-id)",
        "0 lost; duplicates only with the same webhook-id",
    )


async def test_a_hanging_receiver_does_not_slow_the_others(settings: Settings) -> None:
    async with (
        stuck_and_healthy(settings) as (app, http, parties, stuck, healthy),
        running_worker(app, webhook_timeout_s=600),
    ):
        started = time.monotonic()
        await purchases(http, parties, PURCHASES[soak_level()])
        async with asyncio.timeout(300):
            while True:
                if len(healthy.unique()) >= 5 * PURCHASES[soak_level()]:
                    break
                await asyncio.sleep(0.05)
        took, hanging = time.monotonic() - started, stuck.hanging
        assert hanging >= 1  # still hanging all along
        assert in_order_per_record(healthy)
        stuck.release.set()
        stuck.hang = False
    record_figure(
        f"one receiver hangs, another healthy ({len(healthy.unique())} events to the healthy one)",
        f"all delivered to the healthy one in {took:.1f} s (purchases included) while {hanging} hang",
        "the healthy one unaffected",
    )


async def test_a_burst_to_one_subscription_is_delivered_once_in_order(settings: Settings) -> None:
    count = BURST[soak_level()]
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        await subscribe(http, parties.platform, receiver.url)
        # The burst is written straight into the feed: status changes of records the platform owns.
        async with app.state.sessionmaker() as session, session.begin():
            assert await session.get(Enterprise, PLATFORM) is not None
            records = [uuid.uuid4() for _ in range(max(1, count // 10))]
            session.add_all(
                MatchRecord(id=r, ebp_code=PLATFORM, order_no=f"BURST{n:06d}", status="CLEARED", missing=[],
                            discrepancies=[])
                for n, r in enumerate(records)
            )  # fmt: skip
            await session.flush()
            session.add_all(
                RecordEvent(record_id=records[n % len(records)], kind="status_changed", actor="burst",
                            detail={"from": "CLEARED", "to": "CLEARED"})
                for n in range(count)
            )  # fmt: skip
        started = time.monotonic()
        async with running_worker(app, webhook_subscription_in_flight=64):
            made = await settled(app, receiver, count, timeout_s=1100)
        seconds = time.monotonic() - started
        async with app.state.sessionmaker() as session:
            delivered = await session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "delivered")
            )
        assert made == count
        assert delivered == count
        assert len(receiver.unique()) == count
        assert in_order_per_record(receiver)
    record_figure(
        f"burst of {count} events to one subscription",
        f"all delivered once, in order per record, in {seconds:.1f} s ({count / seconds:.0f} events/s, shared machine)",
        "all, in order",
    )
