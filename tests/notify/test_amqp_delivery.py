"""The RabbitMQ transport against the real broker on 127.0.0.1:5672 (skipped only when none is reachable):
persistent messages, publisher confirms, routing key = event type, the webhook-id as message id and the
Standard Webhooks signature in the headers; an exchange that does not exist, or routes nowhere, is a failure
recorded on the delivery, never a message lost silently."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from app.config import Settings
from app.webhooks import sign
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.test_webhook_delivery import FAST_RETRIES, PLATFORM, drain, worker_of

BROKER = "amqp://guest:guest@127.0.0.1:5672/"


def _broker_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _broker_reachable(), reason="no RabbitMQ on 127.0.0.1:5672")


@asynccontextmanager
async def bound_queue(exchange_name: str, bind: bool = True) -> AsyncIterator[AbstractQueue]:
    """The enterprise's side: a topic exchange and (unless ``bind`` is false) a queue taking every event."""
    connection = await aio_pika.connect_robust(BROKER)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
        queue = await channel.declare_queue(exclusive=True)
        if bind:
            await queue.bind(exchange, routing_key="#")
        yield queue
    finally:
        await connection.close()


async def take(queue: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    messages = []
    for _ in range(500):
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.02)
            continue
        messages.append(message)
        if len(messages) == count:
            break
    return messages


async def subscribe_amqp(http: object, headers: dict[str, str], exchange: str) -> dict[str, object]:
    answer = await http.post(  # type: ignore[attr-defined]
        f"/api/v1/enterprises/{PLATFORM}/subscriptions",
        json={"url": BROKER, "exchange": exchange, "events": ["document_receipt", "status_changed"]},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    assert "guest:guest" not in str(body["url"])  # the password is not shown back
    return body


async def test_events_are_published_persistent_confirmed_and_signed(settings: Settings) -> None:
    exchange = f"sw.test.{uuid.uuid4().hex[:8]}"
    async with serving(settings, **FAST_RETRIES) as (app, http), bound_queue(exchange) as queue:
        parties = await file_parties(http)
        subscription = await subscribe_amqp(http, parties.platform, exchange)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        async with worker_of(app) as worker:
            await drain(app, worker)
            await worker.close()
        messages = await take(queue, 5)
        assert len(messages) >= 5
        assert {m.routing_key for m in messages} == {"document_receipt", "status_changed"}
        for message in messages:
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            headers = message.headers
            assert message.message_id == headers["webhook-id"]
            expected = sign(
                str(subscription["secret"]), str(headers["webhook-id"]), str(headers["webhook-timestamp"]), message.body
            )
            assert expected in str(headers["webhook-signature"]).split()
        deliveries = await http.get(
            f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}/deliveries", headers=parties.platform
        )
        assert {d["status"] for d in deliveries.json()["items"]} == {"delivered"}


async def test_an_unroutable_or_missing_exchange_is_a_recorded_failure(settings: Settings) -> None:
    exchange = f"sw.test.{uuid.uuid4().hex[:8]}"
    async with serving(settings, **FAST_RETRIES) as (app, http), bound_queue(exchange, bind=False):
        parties = await file_parties(http)
        routes_nowhere = await subscribe_amqp(http, parties.platform, exchange)
        missing = await subscribe_amqp(http, parties.platform, f"{exchange}.missing")
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        paths = [f"/api/v1/enterprises/{PLATFORM}/subscriptions/{s['id']}" for s in (routes_nowhere, missing)]
        async with worker_of(app) as worker:
            for _ in range(500):
                await worker.run_once()
                await worker.settle()
                shown = [(await http.get(path, headers=parties.platform)).json() for path in paths]
                if all(s["consecutiveFailures"] >= 2 for s in shown):
                    break
                await asyncio.sleep(0.01)
            await worker.close()
        for subscription in shown:
            assert subscription["lastError"].startswith("AMQP"), subscription
            assert subscription["consecutiveFailures"] >= 2
