"""The read replica under load, lagging and lost (SW_READ_DATABASE_URL; a real streaming standby, the pair of
tests/test_read_replica.py).

Writers store purchases on the primary while an official searches for them and reads the statistics, which are
routed to the replica. Midway the replica's replay is paused past the maximum lag, then resumed; later the
standby is stopped, then started again. Asserted for every read: 200 (never a 500 or, with fallback on, a 503),
an answer from the replica only while its reported lag is within the maximum, and never wrong — a purchase the
search finds is the primary's record for that order (a replica behind may miss the newest ones, which is what its
reported lag says). Reported: where the reads went and why, the largest lag read, and how soon reads returned
to the replica.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import ADMIN, serving, soak_level
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.figures import record_figure
from tests.test_read_replica import Pair, pair, replicated, with_replica  # noqa: F401 - the module's fixtures

pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]

PURCHASES = {"quick": 30, "full": 150}
WRITERS = 3
MAX_LAG_S = 1.0
PHASE_S = {"quick": 3.0, "full": 8.0}
RECOVERY_WAIT_S = 60  # the restarted standby replays what it missed before its lag is within the maximum


class Reads:
    def __init__(self) -> None:
        self.by_source: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.wrong: list[str] = []
        self.refused: list[str] = []
        self.max_replica_lag = 0.0
        self.last_source = ""
        self.back_on_replica_at: float | None = None


async def _writer(
    http: httpx.AsyncClient, parties: Parties, count: int, stored: dict[str, str], done: asyncio.Event
) -> None:
    """At least ``count`` purchases, and on until ``done``: the primary keeps writing through every phase, so
    a paused replica's lag keeps growing."""
    written = 0
    while written < count or not done.is_set():
        written += 1
        await asyncio.sleep(0.05)
        triple = purchase(own_buyer=True)
        answers = await post_triple(http, parties, triple)
        assert all(a.status_code in (200, 201, 202) for a in answers), [a.text for a in answers]
        stored[triple[0]["orderNo"]] = answers[-1].json()["recordId"]


async def _reader(http: httpx.AsyncClient, stored: dict[str, str], reads: Reads, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if stored and random.random() < 0.8:
            order_no = random.choice(list(stored))
            response = await http.get("/api/v1/records", params={"orderNo": order_no}, headers=ADMIN)
        else:
            order_no = None
            response = await http.get("/api/v1/stats/summary", headers=ADMIN)
        reads.statuses[response.status_code] += 1
        if response.status_code != 200:
            reads.refused.append(f"{response.status_code} {response.text[:300]}")
            continue
        source = response.headers["X-Read-Source"]
        lag = float(response.headers["X-Read-Lag"])
        reason = response.headers.get("X-Read-Fallback")
        reads.by_source[f"{source}/{reason}" if reason else source] += 1
        if source == "replica":
            reads.max_replica_lag = max(reads.max_replica_lag, lag)
            if lag > MAX_LAG_S:
                reads.wrong.append(f"read from a replica {lag} s behind")
            if reads.last_source != "replica" and reads.back_on_replica_at is None and reads.last_source:
                reads.back_on_replica_at = time.monotonic()
        reads.last_source = source
        if order_no is not None:
            found = [item["id"] for item in response.json()["items"]]
            if found not in ([], [stored[order_no]]):
                reads.wrong.append(f"{order_no}: {found} against {stored[order_no]}")
            if source == "primary" and not found:
                reads.wrong.append(f"{order_no}: the primary did not find a stored purchase")
        await asyncio.sleep(0.02)


async def _at_least(seconds: float, seen: Callable[[], bool]) -> None:
    """``seconds``, and longer until ``seen()`` holds: on a busy machine the writers commit less often, and
    the lag (the age of the last transaction replayed) takes longer to pass the maximum. A bound far from the
    seconds it takes keeps a broken fallback from waiting for ever."""
    await asyncio.sleep(seconds)
    for _ in range(RECOVERY_WAIT_S * 50):
        if seen():
            return
        await asyncio.sleep(0.02)


@with_replica
async def test_reads_under_load_with_the_replica_lagging_and_lost(
    replicated: tuple[Pair, Settings],  # noqa: F811 - the fixture imported above
) -> None:
    standby_pair, settings = replicated
    level = soak_level()
    phase = PHASE_S[level]
    reads = Reads()
    stored: dict[str, str] = {}
    marks: dict[str, Any] = {}
    async with serving(settings, read_max_lag_s=MAX_LAG_S) as (_, http):
        parties = await file_parties(http)
        stop, done = asyncio.Event(), asyncio.Event()
        readers = [asyncio.create_task(_reader(http, stored, reads, stop)) for _ in range(2)]
        count = PURCHASES[level] // WRITERS
        writers = [asyncio.create_task(_writer(http, parties, count, stored, done)) for _ in range(WRITERS)]
        try:
            await asyncio.sleep(phase)
            standby_pair.pause()  # replay stops; the primary goes on writing: the lag grows past the maximum
            await _at_least(phase, lambda: reads.by_source["primary/lagging"] > 0)
            marks["lagging"] = reads.by_source["primary/lagging"]
            standby_pair.resume()
            await asyncio.sleep(phase)
            standby_pair.standby.stop()
            lost_from = sum(reads.statuses.values())
            await _at_least(phase, lambda: reads.by_source["primary/unreachable"] > 0)
            marks["unreachable"] = reads.by_source["primary/unreachable"]
            marks["during_loss"] = sum(reads.statuses.values()) - lost_from
            reads.back_on_replica_at = None
            reads.last_source = "primary"
            restarted = time.monotonic()
            standby_pair.standby.start()
            done.set()
            await asyncio.wait_for(asyncio.gather(*writers), timeout=600)
            for _ in range(RECOVERY_WAIT_S * 50):  # a bound far from the second or two it takes
                if reads.back_on_replica_at is not None:
                    break
                await asyncio.sleep(0.02)
            marks["recovery_s"] = (reads.back_on_replica_at or time.monotonic()) - restarted
        finally:
            stop.set()
            done.set()
            await asyncio.gather(*readers, *writers, return_exceptions=True)
            if not (standby_pair.standby.data / "postmaster.pid").exists():
                standby_pair.standby.start()
            standby_pair.resume()
    await standby_pair.caught_up()

    total = sum(reads.statuses.values())
    assert set(reads.statuses) == {200}, (reads.statuses, reads.refused[:3])  # no 500; with fallback on no 503
    assert reads.wrong == [], reads.wrong[:5]
    assert len(stored) >= PURCHASES[level] // WRITERS * WRITERS
    assert marks["lagging"] > 0, reads.by_source  # the lagging replica was left for the primary
    assert marks["unreachable"] > 0, reads.by_source  # so was the lost one
    assert reads.back_on_replica_at is not None, "reads never went back to the replica after it restarted"
    shares = ", ".join(f"{source} {count}" for source, count in sorted(reads.by_source.items()))
    record_figure(
        f"Read replica under load ({WRITERS} writers, {len(stored)} purchases, 2 officials reading; replay paused "
        f"{phase:.0f} s past the {MAX_LAG_S:.0f} s maximum lag, then the standby stopped {phase:.0f} s)",
        f"{total} reads: 5xx 0, wrong 0 ({shares}); largest lag read from the replica {reads.max_replica_lag:.2f} s; "
        f"reads during the loss {marks['during_loss']}, all answered; back on the replica "
        f"{marks['recovery_s']:.1f} s after it restarted",
        "never a 500 or a wrong answer; the replica read only within its maximum lag; back after it returns",
    )
