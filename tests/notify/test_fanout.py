"""The fan-out with nobody subscribed moves its cursor to the feed's head without reading the events, and a
subscription made afterwards gets the events from its creation on — none from before."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.lifecycle.feed import FeedPosition, feed_head
from app.models import FeedCursor, WebhookDelivery
from app.services.fanout import FANOUT_CURSOR, fan_out
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.test_webhook_delivery import FAST_RETRIES, subscribe


async def cursor_and_head(app: FastAPI) -> tuple[FeedPosition, FeedPosition | None]:
    async with app.state.sessionmaker() as session:
        cursor = await session.get(FeedCursor, FANOUT_CURSOR)
        assert cursor is not None
        return FeedPosition(cursor.tx, cursor.event_id), await feed_head(session)


async def deliveries(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


async def test_with_nobody_subscribed_the_cursor_jumps_to_the_head(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http):
        parties = await file_parties(http)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text
        for _ in range(500):  # the matcher's events come a moment later
            await fan_out(app.state.sessionmaker)
            cursor, head = await cursor_and_head(app)
            if head is not None and head.id >= 5 and cursor == head:
                break
            await asyncio.sleep(0.01)
        assert head is not None
        assert cursor == head
        assert await fan_out(app.state.sessionmaker) == 0  # nothing new: no write either

        await subscribe(http, parties.platform, "http://127.0.0.1:9/hooks")
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text
        for _ in range(500):
            await fan_out(app.state.sessionmaker)
            if await deliveries(app) >= 5:
                break
            await asyncio.sleep(0.01)
        async with app.state.sessionmaker() as session:
            positions = [
                FeedPosition(tx, event_id)
                for tx, event_id in await session.execute(select(WebhookDelivery.event_tx, WebhookDelivery.event_id))
            ]
        assert len(positions) >= 5
        assert min(positions) > head  # the first purchase's events were passed over, not sent
