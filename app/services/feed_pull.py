"""Pulling the feed: one page for a reader of everything or for one enterprise, with a long-poll ``wait``.

While it waits nothing is held open: each look is its own short read. A matcher in this process wakes the
waiters as soon as it commits a round (app/services/waiting.py); other writers — the dispatcher, agency
callbacks, another process — are seen by a look every ``LOOK_S``.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.lifecycle.feed import FeedPosition, read_feed
from app.services.enterprise_feed import ShownEvent, read_enterprise_feed, receipt_message
from app.services.waiting import Waiters

MAX_FEED_WAIT_S = 30
LOOK_S = 0.25
FEED_XML_TYPE = "application/xml"


@dataclass(frozen=True)
class FeedPull:
    shown: list[ShownEvent]
    next_position: FeedPosition


async def _page(session: AsyncSession, code: str | None, after: FeedPosition, limit: int) -> FeedPull:
    if code is None:
        events = await read_feed(session, after, limit)
        shown = [ShownEvent(e, "whole", e.detail) for e in events]
        return FeedPull(shown, events[-1].position if events else after)
    shown, position = await read_enterprise_feed(session, code, after, limit)
    return FeedPull(shown, position)


async def pull_feed(
    sessionmaker: async_sessionmaker[AsyncSession],
    waiters: Waiters,
    code: str | None,
    after: FeedPosition,
    limit: int,
    wait_s: float,
) -> FeedPull:
    """A page after ``after``; when it has nothing to show, looked for again until ``wait_s`` have passed. A
    page of events this reader may not see moves the cursor on all the same."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        async with sessionmaker() as session:
            page = await _page(session, code, after, limit)
        left = deadline - loop.time()
        if page.shown or left <= 0:
            return page
        after = page.next_position
        await waiters.next_round(min(LOOK_S, left))


async def feed_xml(sessionmaker: async_sessionmaker[AsyncSession], page: FeedPull) -> bytes:
    """The page's receipt-carrying events, each as its CEB message inside an ``Event`` of a ``Feed``."""
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<Feed nextCursor="{page.next_position.cursor()}">']
    async with sessionmaker() as session:
        for shown in page.shown:
            message = await receipt_message(session, shown)
            if message is None:
                continue
            body = message.split(b"?>", 1)[1].strip() if message.startswith(b"<?xml") else message
            event = shown.event
            parts.append(
                f'<Event position="{event.position.cursor()}" kind="{html.escape(event.kind)}" '
                f'recordId="{event.record_id or ""}">{body.decode()}</Event>'
            )
    parts.append("</Feed>")
    return "".join(parts).encode()
