"""The dispatcher: drains the outbox to the agencies. ``python -m app.worker`` (= ``sw worker``) runs it
standalone — several at once on PostgreSQL; embedded mode runs it inside ``sw serve``.

It sleeps until there is work: PostgreSQL ``LISTEN sw_dispatch`` (the declaring transaction NOTIFYs on
commit; app/pg_listen.py) or, on SQLite, a short poll; due retries are found by the same poll. No busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.adapters.base import AgencyAdapter
from app.adapters.registry import build_adapters
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker, is_outage
from app.environment import check_environment
from app.observability import Metrics, configure_logging
from app.pg_listen import Listener
from app.services.after_release_delivery import deliver_requests
from app.services.declaration import DISPATCH_CHANNEL, enabled_agencies
from app.services.dispatch import (
    Sent,
    batches,
    claim_due,
    read_packages,
    reap_expired_leases,
    record_sent,
    send_group,
)
from app.services.partitions import keep_partitions
from app.tls import client_tls_context

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
        # Looked up at each notification (not bound now), so that a wrapped ``wake`` is the one called.
        self._listener = Listener(settings.database_url, [DISPATCH_CHANNEL], lambda _channel: self.wake())

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run_once(self) -> int:
        """Reap expired leases, claim a round and deliver it — one adapter call per batch of up to
        ``SW_DISPATCH_BATCH_SIZE`` dispatches of one agency; returns how many were claimed."""
        await reap_expired_leases(self.sessionmaker, self.settings.dispatch_max_attempts)
        claims = await claim_due(self.sessionmaker, self.settings)
        if claims:
            packages = await read_packages(self.sessionmaker, claims, self.settings)
            groups = batches(claims, self.settings.dispatch_batch_size)
            calls = await asyncio.gather(
                *(send_group(self.sessionmaker, self.settings, self.adapters, group, packages) for group in groups),
                return_exceptions=True,
            )
            sent = []
            for group, call in zip(groups, calls, strict=True):
                if isinstance(call, BaseException):  # a bug in an adapter: the leases expire, the reaper retries
                    log.error("batch of %d dispatches to %s failed: %r", len(group), group[0].agency, call)
                else:
                    sent.append(call)
            await self._record(sent)
        # Cancels and returns go to customs in the same rounds (they are few), once their declaration did.
        requests = await deliver_requests(self.sessionmaker, self.settings, self.adapters, self.rng)
        return len(claims) + requests

    async def _record(self, sent: list[Sent]) -> None:
        """The round's outcomes in one transaction; if that fails for anything but an outage, each agency's
        batch on its own, so that one batch that cannot be recorded does not hold up the others."""
        if not sent:
            return
        try:
            await record_sent(self.sessionmaker, self.settings, sent, self.rng, self.metrics)
            return
        except Exception as exc:
            if is_outage(exc) or len(sent) == 1:
                # Recording failed (the database?): the leases expire and the reaper takes them back.
                log.error("outcomes of %d batches not recorded: %r", len(sent), exc)
                return
        for group in sent:
            try:
                await record_sent(self.sessionmaker, self.settings, [group], self.rng, self.metrics)
            except Exception as exc:
                log.error("batch of %d dispatches to %s not recorded: %r", len(group.claims), group.agency, exc)

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # before the round: a wake-up that comes during it starts the next one
                await self._ensure_listening()
                try:
                    claimed = await self.run_once()
                except Exception:  # a database outage must not kill the worker: log, wait, go on
                    log.exception("dispatcher round failed")
                    claimed = 0
                if claimed:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle_timeout())
        finally:
            await self._unlisten()

    def _listening(self) -> bool:
        return self._listener.listening()

    def _idle_timeout(self) -> float:
        return self._listener.idle_timeout(self.settings.dispatch_poll_s)

    async def _ensure_listening(self) -> None:
        await self._listener.ensure()

    async def _unlisten(self) -> None:
        await self._listener.close()


def agency_clients(settings: Settings, embedded_app: Any | None) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """One client for real agency URLs, one for the mock agencies in this process (if any)."""
    timeout = httpx.Timeout(connect=5.0, read=settings.agency_timeout_s, write=10.0, pool=5.0)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    remote = httpx.AsyncClient(timeout=timeout, limits=limits, verify=client_tls_context())
    transport = httpx.ASGITransport(app=embedded_app) if embedded_app is not None else None
    embedded = httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)
    return remote, embedded


async def run_worker(settings: Settings) -> None:
    """Standalone worker: agencies must have URLs (there are no in-process mocks here)."""
    check_environment(settings, "worker")
    engine = create_engine(settings)
    remote, embedded = agency_clients(settings, None)
    adapters = build_adapters(enabled_agencies(settings), settings, remote, embedded)
    dispatcher = Dispatcher(engine, create_sessionmaker(engine), settings, adapters)
    log.info("dispatcher started for %s", ", ".join(adapters))
    partitions_stop = asyncio.Event()
    partitions = asyncio.create_task(
        keep_partitions(engine, settings.partitions_ahead, settings.partition_maintenance_s, partitions_stop)
    )
    try:
        await dispatcher.run()
    finally:
        partitions_stop.set()
        await partitions
        await remote.aclose()
        await embedded.aclose()
        await engine.dispose()


def main() -> None:
    configure_logging()
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
