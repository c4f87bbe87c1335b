"""The feed never lets a cursor pass over an event whose transaction commits late (PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.lifecycle.feed import START, FeedPosition, read_feed

pytestmark = pytest.mark.postgres_only

INSERT = text(
    "INSERT INTO record_event (kind, actor, at, detail) VALUES ('status_changed', 'test', now(), CAST(:d AS jsonb))"
)


async def _read(app: FastAPI, after: FeedPosition) -> list[str]:
    async with app.state.sessionmaker() as session:
        return [event.detail["n"] for event in await read_feed(session, after, 100)]


async def _read_once_settled(app: FastAPI, expected: int) -> list[str]:
    """The feed once ``expected`` events are readable: a transaction of another database of the cluster still
    running (transaction ids are cluster-wide) holds the feed back until it ends."""
    for _ in range(200):
        events = await _read(app, START)
        if len(events) >= expected:
            return events
        await asyncio.sleep(0.05)
    return await _read(app, START)


async def test_an_event_committed_late_is_read_in_its_place_not_skipped(app: FastAPI) -> None:
    engine = app.state.engine
    async with engine.connect() as slow:
        late = await slow.begin()
        await slow.execute(INSERT, {"d": '{"n": "late"}'})  # its transaction started first, commits last
        async with engine.begin() as quick:
            await quick.execute(INSERT, {"d": '{"n": "quick"}'})
        # While the first transaction runs, nothing after it is visible: a reader would otherwise move its
        # cursor past "quick" and never see "late".
        assert await _read(app, START) == []
        await late.commit()
    assert await _read_once_settled(app, 2) == ["late", "quick"]


async def test_reading_on_from_a_cursor_gives_each_event_once(app: FastAPI) -> None:
    async with app.state.engine.begin() as conn:
        for n in range(5):
            await conn.execute(INSERT, {"d": f'{{"n": "{n}"}}'})
    await _read_once_settled(app, 5)
    seen: list[str] = []
    position = START
    for _ in range(5):
        async with app.state.sessionmaker() as session:
            events = await read_feed(session, position, 2)
        seen += [event.detail["n"] for event in events]
        if events:
            position = events[-1].position
    assert seen == ["0", "1", "2", "3", "4"]
