"""The delivery worker: fans the feed out to subscriptions, then keeps up to ``SW_WEBHOOK_CONCURRENCY``
deliveries in flight — each sent outside any transaction and recorded on its own as soon as it ends, so a
hanging endpoint holds one slot (and at most its subscription's allowance, app/notify/pacing.py),
never a round. ``sw deliver`` runs it standalone (several at once on PostgreSQL: claims SKIP LOCKED, the
fan-out serialised on its cursor row); embedded mode runs it inside ``sw serve``. On PostgreSQL it sleeps
until a NOTIFY (new feed events, a redelivery or replay; app/pg_listen.py), the poll as the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.environment import check_environment
from app.notify.amqp import AmqpPublisher
from app.notify.pacing import Allowances
from app.notify.webhook import WebhookSender, post_webhook, webhook_client
from app.observability import configure_logging
from app.pg_listen import Listener
from app.rules.webhook_targets import AMQP_SCHEMES
from app.services.fanout import fan_out
from app.services.waiting import Waiters
from app.services.webhook_delivery import (
    DELIVERY_CHANNEL,
    FEED_CHANNEL,
    AttemptResult,
    Claimed,
    claim_due,
    record_attempts,
)

log = logging.getLogger(__name__)

# After a feed NOTIFY whose events the fan-out does not see yet: look again after 10 ms, 20 ms … at most 1 s
# apart, for at most 5 minutes (then the poll alone): an old transaction anywhere on the server holds the feed back.
FEED_RECHECK_FIRST_S, FEED_RECHECK_CAP_S, FEED_OWED_FOR_S = 0.01, 1.0, 300.0
# Without a LISTEN connection (SQLite, or while it is being opened again) the feed is read at most this often
# between the signs that it has news: an empty fan-out is a write transaction (it locks its cursor), and a
# busy worker goes round after every recorded group.
FANOUT_UNPROMPTED_EVERY_S = 0.05


class DeliveryWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: WebhookSender,
        waiters: Waiters | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.client = client
        self.waiters = waiters
        self.rng = rng
        self.amqp = AmqpPublisher()
        self._in_flight: Counter[uuid.UUID] = Counter()
        self._allowances = Allowances(
            settings.webhook_subscription_in_flight, settings.webhook_subscription_in_flight_max
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[AttemptResult] = []
        self._recording = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener = Listener(settings.database_url, [FEED_CHANNEL, DELIVERY_CHANNEL], self._notified)
        self._feed_owed_since: float | None = None  # monotonic time of a feed NOTIFY not yet seen fanned out
        self._recheck_s = FEED_RECHECK_FIRST_S
        # Whether the feed may have news: a feed NOTIFY, a matcher round in this process, the poll interval
        # passed, or the last fan-out read events. Ending deliveries wake the worker too, with no news.
        self._feed_due = True
        self._fanned_at = 0.0
        # SQLite: this worker's own transactions take turns here rather than at the database lock, whose busy
        # handler sleeps (1 ms, 2 ms … 100 ms) while the other one commits — most of a round's time. PostgreSQL
        # runs them side by side.
        self._turn: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Lock() if settings.is_sqlite else contextlib.nullcontext()
        )

    def wake(self) -> None:
        self._wake.set()

    def _notified(self, channel: str | None) -> None:
        if channel == FEED_CHANNEL:
            self._feed_due = True
            if self._feed_owed_since is None:
                self._recheck_s = FEED_RECHECK_FIRST_S
            self._feed_owed_since = time.monotonic()
        self.wake()

    def allowance(self, subscription_id: uuid.UUID) -> int:
        """How many deliveries to the subscription this worker may have in flight now."""
        return self._allowances[subscription_id]

    def listening(self) -> bool:
        return self._listener.listening()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def settle(self) -> None:
        """Until the deliveries in flight now have ended (and been recorded)."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run_once(self) -> int:
        """Fan out a batch and start the due deliveries there is room for; returns how much was done."""
        started = time.monotonic()
        fanned = 0
        owed = self._feed_owed_since is not None  # a feed NOTIFY whose events were not readable yet
        if self._feed_due or owed or (not self.listening() and started - self._fanned_at >= FANOUT_UNPROMPTED_EVERY_S):
            self._feed_due, self._fanned_at = False, started
            async with self._turn:
                fanned = await fan_out(self.sessionmaker)
            self._feed_due = self._feed_due or fanned > 0  # more may follow the batch read
        if fanned and self._feed_owed_since is not None and self._feed_owed_since < started:
            self._feed_owed_since = None
        room = self.settings.webhook_concurrency - len(self._tasks)
        async with self._turn:
            claims = await claim_due(self.sessionmaker, self.settings, room, self._in_flight, self._allowances)
        for claimed in claims:
            self._in_flight[claimed.subscription_id] += 1
            task = asyncio.create_task(self._deliver(claimed), name=f"delivery {claimed.delivery_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return fanned + len(claims)

    async def _deliver(self, claimed: Claimed) -> None:
        try:
            result = await self._send(claimed)
        except Exception as exc:  # a bug in a transport: this attempt failed, the delivery is retried
            log.exception("delivery %s failed", claimed.delivery_id)
            result = AttemptResult(claimed, None, f"{type(exc).__name__}: {exc}"[:300], 0)
        self._outcomes.append(result)
        await self._record_outcomes()

    async def _record_outcomes(self) -> None:
        """Group commit: whoever gets the lock records every outcome gathered so far; a delivery that ends
        meanwhile waits for the lock and finds its outcome recorded, or records the next group."""
        async with self._recording:
            group, self._outcomes = self._outcomes, []
            if not group:
                return
            try:
                async with self._turn:
                    await record_attempts(self.sessionmaker, self.settings, group, self.rng)
            except Exception:  # the leases expire and the deliveries are claimed again (same webhook-id)
                log.exception("outcomes of %d deliveries not recorded", len(group))
            finally:
                for result in group:
                    subscription_id = result.claimed.subscription_id
                    self._allowances.answered(subscription_id, result.delivered, result.duration_ms)
                    self._in_flight[subscription_id] -= 1
                    if self._in_flight[subscription_id] <= 0:
                        del self._in_flight[subscription_id]
                self.wake()  # the records' next events may be due now

    async def _send(self, claimed: Claimed) -> AttemptResult:
        if claimed.unsendable is not None:
            return AttemptResult(claimed, None, claimed.unsendable, 0)
        if claimed.url.split(":", 1)[0].lower() in AMQP_SCHEMES:
            return await self.amqp.publish(
                claimed, allow_private=self.settings.webhook_allow_private, timeout_s=self.settings.webhook_timeout_s
            )
        return await post_webhook(
            self.client,
            claimed,
            allow_private=self.settings.webhook_allow_private,
            timeout_s=self.settings.webhook_timeout_s,
        )

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                await self._listener.ensure()
                try:
                    done = await self.run_once()
                except Exception:  # a database outage must not kill the worker: log, wait, go on
                    log.exception("delivery round failed")
                    done = 0
                if done and len(self._tasks) < self.settings.webhook_concurrency:
                    continue
                await self._idle()
        finally:
            await self.close()

    async def close(self) -> None:
        """Cancel the deliveries in flight (their leases expire: sent again, same webhook-id) and close the
        AMQP connections."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.amqp.close()
        await self._listener.close()

    def _idle_timeout(self) -> float:
        """The poll interval (less while the LISTEN connection is to be opened again), or a quick recheck
        while a feed NOTIFY is owed: the feed shows a committed event only once every older transaction has
        ended (app/lifecycle/feed.py), which may be a moment after the NOTIFY."""
        timeout = self._listener.idle_timeout(self.settings.webhook_poll_s)
        owed = self._feed_owed_since
        if owed is not None:
            if time.monotonic() - owed > FEED_OWED_FOR_S:
                self._feed_owed_since = None  # a NOTIFY of events outside the feed: back to the poll
            else:
                timeout, self._recheck_s = min(timeout, self._recheck_s), min(self._recheck_s * 2, FEED_RECHECK_CAP_S)
        return timeout

    async def _idle(self) -> None:
        """Until a delivery ends, a NOTIFY arrives, a matcher round in this process commits, or the poll
        interval passes."""
        timeout = self._idle_timeout()
        waits: list[asyncio.Task[object]] = [asyncio.create_task(self._wake.wait())]
        if self.waiters is not None:
            waits.append(asyncio.create_task(self.waiters.next_round(timeout)))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not self._wake.is_set():  # the poll interval, a recheck, or a matcher round: read the feed
                self._feed_due = True
        finally:
            for wait in waits:
                wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)


async def run_delivery(settings: Settings) -> None:
    check_environment(settings, "deliver")
    engine = create_engine(settings)
    client = webhook_client()
    worker = DeliveryWorker(create_sessionmaker(engine), settings, client)
    log.info("delivery worker started")
    try:
        await worker.run()
    finally:
        await client.aclose()
        await engine.dispose()


def main() -> None:
    configure_logging()
    asyncio.run(run_delivery(get_settings()))


if __name__ == "__main__":
    main()
