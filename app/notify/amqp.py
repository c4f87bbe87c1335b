"""RabbitMQ transport (AMQP 0-9-1, aio-pika): a subscription whose URL is ``amqp://…`` (or ``amqps://``) gets
each event published to its ``exchange`` with the event type as routing key — persistent, with publisher
confirms (a delivery counts once the broker has taken responsibility for it), ``mandatory`` so that a message
no queue is bound for comes back as a failure instead of vanishing. The Standard Webhooks headers travel as
message headers, the ``webhook-id`` also as the message id, for the consumer to dedupe on.

The exchange is the enterprise's: it is looked up (passively declared), never created here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from pamqp.commands import Basic

from app.notify.target_guard import TargetRefused, allowed_target
from app.notify.webhook import webhook_headers
from app.services.webhook_delivery import AttemptResult, Claimed


class AmqpPublisher:
    """One connection per broker URL and one confirming channel per exchange, opened on first use and kept;
    a channel the broker closed (a missing exchange closes it) is opened again on the next attempt, and one
    subscription's broken exchange never disturbs another's channel."""

    def __init__(self) -> None:
        self._connections: dict[str, AbstractRobustConnection] = {}
        self._channels: dict[tuple[str, str], AbstractRobustChannel] = {}
        self._opening = asyncio.Lock()

    async def _channel(self, url: str, exchange: str) -> AbstractRobustChannel:
        async with self._opening:
            channel = self._channels.get((url, exchange))
            if channel is not None and not channel.is_closed:
                return channel
            connection = self._connections.get(url)
            if connection is None or connection.is_closed:
                connection = await aio_pika.connect_robust(url, timeout=10)
                self._connections[url] = connection
            channel = await connection.channel(publisher_confirms=True)
            self._channels[(url, exchange)] = channel
            return channel

    async def _forget(self, url: str, exchange: str) -> None:
        channel = self._channels.pop((url, exchange), None)
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

    async def publish(self, claimed: Claimed, *, allow_private: bool, timeout_s: float) -> AttemptResult:
        started = time.monotonic()

        def result(error: str | None) -> AttemptResult:
            return AttemptResult(claimed, None, error, int((time.monotonic() - started) * 1000))

        try:
            await allowed_target(claimed.url, allow_private)
        except TargetRefused as exc:
            return result(f"refused: {exc}")
        assert claimed.exchange is not None
        headers = webhook_headers(claimed, int(time.time()))
        message = aio_pika.Message(
            claimed.body,
            content_type=claimed.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=claimed.webhook_id,
            type=claimed.event_type,
            headers={k: v for k, v in headers.items() if k.startswith("webhook-")},
        )
        try:
            async with asyncio.timeout(timeout_s):
                channel = await self._channel(claimed.url, claimed.exchange)
                exchange = await channel.get_exchange(claimed.exchange, ensure=True)
                confirmation = await exchange.publish(message, routing_key=claimed.event_type, mandatory=True)
        except TimeoutError:
            await self._forget(claimed.url, claimed.exchange)
            return result(f"the broker did not confirm within {timeout_s:g} s")
        except Exception as exc:  # aio-pika raises many kinds; each is this attempt's failure, to retry
            await self._forget(claimed.url, claimed.exchange)
            return result(f"AMQP {type(exc).__name__}: {exc}"[:300])
        if not isinstance(confirmation, Basic.Ack):
            return result(f"AMQP: the broker did not take the message ({type(confirmation).__name__})")
        return result(None)

    async def close(self) -> None:
        self._channels = {}
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            with contextlib.suppress(Exception):  # a broken connection: nothing left to close
                await connection.close()
