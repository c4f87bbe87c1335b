"""Waking a worker from another process: PostgreSQL ``LISTEN`` on its channels, the writing transaction
``NOTIFY``ing on commit. The dispatcher and the delivery worker both sleep on one of these; their poll stays
as the fallback (and is all SQLite has). A listening connection lost with the database (a restart) is opened
again, with backoff, while the poll goes on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

# Re-opening a lost LISTEN connection: first at once, then after 0.5 s, 1 s, 2 s … at most 30 s apart.
RELISTEN_BACKOFF_S, RELISTEN_BACKOFF_CAP_S = 0.5, 30.0
LISTEN_CONNECT_TIMEOUT_S = 10.0


async def notify(session: AsyncSession, channel: str) -> None:
    """Wake the listeners of ``channel`` when this transaction commits (PostgreSQL; elsewhere they poll)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"NOTIFY {channel}"))


class Listener:
    """One LISTEN connection for ``channels``; ``on_notify(channel)`` runs for each notification, and with
    None when the connection is lost (so that the owner's loop wakes and calls ``ensure`` again)."""

    def __init__(self, database_url: str, channels: Sequence[str], on_notify: Callable[[str | None], None]) -> None:
        self._url = make_url(database_url)
        self.enabled = self._url.get_backend_name() == "postgresql"
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._connection: Any = None
        self._failures = 0
        self._next = 0.0  # time.monotonic() of the next attempt to (re)open the connection

    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    def idle_timeout(self, poll_s: float) -> float:
        """The poll interval, or less when a lost connection is due to be opened again sooner."""
        if not self.enabled or self.listening():
            return poll_s
        return max(0.0, min(poll_s, self._next - time.monotonic()))

    async def ensure(self) -> None:
        """LISTEN, unless already listening or a retry is not yet due: at once after a loss, then with backoff
        while the database stays down (the poll covers the gap)."""
        if not self.enabled or self.listening() or time.monotonic() < self._next:
            return
        await self.close()
        try:
            import asyncpg

            dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._connection = await asyncpg.connect(dsn, timeout=LISTEN_CONNECT_TIMEOUT_S)
            self._connection.add_termination_listener(lambda *_: self._on_notify(None))
            for channel in self._channels:
                await self._connection.add_listener(channel, lambda _c, _p, name, _payload: self._on_notify(name))
        except Exception as exc:
            await self.close()
            delay = min(RELISTEN_BACKOFF_CAP_S, RELISTEN_BACKOFF_S * 2**self._failures)
            self._failures += 1
            self._next = time.monotonic() + delay
            log.warning("LISTEN %s unavailable, polling; next try in %.1f s: %s", self._channels, delay, exc)
        else:
            self._failures, self._next = 0, 0.0

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
