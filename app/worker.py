"""The dispatcher: drains the outbox to the agencies. ``python -m app.worker`` (= ``sw worker``) runs it
standalone — several at once on PostgreSQL; embedded mode runs it inside ``sw serve``.

It sleeps until there is work: PostgreSQL ``LISTEN sw_dispatch`` (the declaring transaction NOTIFYs on
commit) or, on SQLite, a short poll; due retries are found by the same poll. No busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.adapters.base import AgencyAdapter
from app.adapters.registry import build_adapters
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.observability import Metrics, configure_logging
from app.services.declaration import DISPATCH_CHANNEL, enabled_agencies
from app.services.dispatch import claim_due, deliver, reap_expired_leases

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        adapters: dict[str, AgencyAdapter],
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.adapters = adapters
        self.rng = rng
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: Any = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run_once(self) -> int:
        """Reap expired leases, claim one batch and deliver it; returns how many were claimed."""
        await reap_expired_leases(self.sessionmaker, self.settings.dispatch_max_attempts)
        claims = await claim_due(self.sessionmaker, self.settings)
        if claims:
            outcomes = await asyncio.gather(
                *(deliver(self.sessionmaker, self.settings, self.adapters, c, self.rng, self.metrics) for c in claims),
                return_exceptions=True,
            )
            for claim, outcome in zip(claims, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    # Recording failed (the database?): the lease expires and the reaper takes it back.
                    log.error("dispatch %s to %s not recorded: %r", claim.id, claim.agency, outcome)
        return len(claims)

    async def run(self) -> None:
        await self._listen()
        try:
            while not self._stopping.is_set():
                try:
                    claimed = await self.run_once()
                except Exception:  # a database outage must not kill the worker: log, wait, go on
                    log.exception("dispatcher round failed")
                    claimed = 0
                if claimed:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.dispatch_poll_s)
        finally:
            await self._unlisten()

    async def _listen(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        try:
            import asyncpg

            url = make_url(self.settings.database_url).set(drivername="postgresql")
            self._listener = await asyncpg.connect(url.render_as_string(hide_password=False))
            await self._listener.add_listener(DISPATCH_CHANNEL, lambda *_: self.wake())
        except Exception as exc:
            log.warning("LISTEN %s unavailable, polling only: %s", DISPATCH_CHANNEL, exc)
            self._listener = None

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()


def agency_clients(settings: Settings, embedded_app: Any | None) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """One client for real agency URLs, one for the mock agencies in this process (if any)."""
    timeout = httpx.Timeout(connect=5.0, read=settings.agency_timeout_s, write=10.0, pool=5.0)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    remote = httpx.AsyncClient(timeout=timeout, limits=limits)
    transport = httpx.ASGITransport(app=embedded_app) if embedded_app is not None else None
    embedded = httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)
    return remote, embedded


async def run_worker(settings: Settings) -> None:
    """Standalone worker: agencies must have URLs (there are no in-process mocks here)."""
    engine = create_engine(settings)
    remote, embedded = agency_clients(settings, None)
    adapters = build_adapters(enabled_agencies(settings), settings, remote, embedded)
    dispatcher = Dispatcher(engine, create_sessionmaker(engine), settings, adapters)
    log.info("dispatcher started for %s", ", ".join(adapters))
    try:
        await dispatcher.run()
    finally:
        await remote.aclose()
        await embedded.aclose()
        await engine.dispose()


def main() -> None:
    configure_logging()
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
