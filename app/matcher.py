"""The matcher: runs the match stage (app/services/match_stage.py) in a loop. ``python -m app.matcher``
(= ``sw matcher``) runs it standalone — several at once on PostgreSQL, each taking a disjoint share;
embedded mode runs it inside ``sw serve``. Beside it runs the risk housekeeping (counter pruning and R8
warnings, app/services/risk_housekeeping.py) every ``SW_RISK_HOUSEKEEPING_INTERVAL_S``.

An accept in this process wakes it at once; otherwise it looks every ``match_poll_s`` (a cheap index-only
query on the pending submissions), and right away again after a full round. After a round that was not full
it lingers ``linger_s`` so that the next one gathers more documents; an accept whose client waits for the
result (``Prefer: wait``) cuts the linger short (``wake(urgent=True)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.environment import check_environment
from app.observability import Metrics, configure_logging
from app.services.match_stage import RoundResult, run_round
from app.services.risk_housekeeping import RiskHousekeeper
from app.services.waiting import Waiters

log = logging.getLogger(__name__)
OUTAGE_PAUSE_S = 1.0


class Matcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        waiters: Waiters | None = None,
        metrics: Metrics | None = None,
        linger_s: float | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.waiters = waiters
        self.metrics = metrics
        self.linger_s = settings.match_linger_s if linger_s is None else linger_s
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self, urgent: bool = False) -> None:
        """Documents were accepted; ``urgent``: a client is waiting for their results, do not linger."""
        self._wake.set()
        if urgent:
            self._urgent.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._urgent.set()

    async def run_once(self) -> RoundResult:
        result = await run_round(self.sessionmaker, self.settings)
        if result.claimed:
            if self.waiters is not None:
                self.waiters.processed()
            if self.metrics is not None:
                self.metrics.matched_submissions.inc(result.processed)
                self.metrics.dead_submissions.inc(result.dead)
        return result

    async def drain(self) -> int:
        """Rounds until nothing is pending that this matcher may take; how many submissions were claimed."""
        total = 0
        while (claimed := (await self.run_once()).claimed) > 0:
            total += claimed
        return total

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before the round: an accept during it starts the next one
            self._urgent.clear()
            try:
                claimed = (await self.run_once()).claimed
            except Exception:  # a database outage must not kill the matcher: log, pause, go on
                log.exception("match round failed")
                await self._pause(OUTAGE_PAUSE_S)
                continue
            if claimed >= self.settings.match_batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.match_poll_s)
            if claimed:
                # Documents keep arriving: let the next round gather more of them. A round costs a fixed dozen
                # statements, so rounds of a handful cost several times more per document than full ones; after
                # an idle spell the first document is taken at once.
                await self._linger()

    async def _linger(self) -> None:
        if self.linger_s > 0 and not self._urgent.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), timeout=self.linger_s)

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


async def run_matcher(settings: Settings) -> None:
    check_environment(settings, "matcher")
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    matcher = Matcher(sessionmaker, settings)
    housekeeper = RiskHousekeeper(sessionmaker, settings)
    housekeeping = asyncio.create_task(housekeeper.run(), name="risk-housekeeping")
    log.info("matcher started (micro-batches of up to %d)", settings.match_batch_size)
    try:
        await matcher.run()
    finally:
        housekeeper.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(housekeeping, timeout=10)
        await engine.dispose()


def tune_gc() -> None:
    """A round allocates tens of thousands of short-lived objects per hundred documents; the default collector
    thresholds spent about a tenth of the matcher's CPU walking them and the modules loaded at start."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


def main() -> None:
    configure_logging()
    tune_gc()
    asyncio.run(run_matcher(get_settings()))


if __name__ == "__main__":
    main()
