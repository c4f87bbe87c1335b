"""The matcher's loop: full rounds follow each other at once, a small round lets documents gather before the
next, and after an idle spell a document is taken as soon as an accept wakes the matcher."""

from __future__ import annotations

import asyncio
import time

from app.config import Settings
from app.matcher import Matcher
from app.services.match_stage import RoundResult
from tests.conftest import serving
from tests.factories import file_parties, purchase


class Scripted(Matcher):
    """A matcher whose rounds claim what a script says, recording when each round started."""

    def __init__(self, settings: Settings, script: list[int]) -> None:
        super().__init__(None, settings)  # type: ignore[arg-type]  # no database: run_once is scripted
        self.script = script
        self.started: list[float] = []

    async def run_once(self) -> RoundResult:
        self.started.append(time.monotonic())
        claimed = self.script.pop(0) if self.script else 0
        if not self.script:
            self.stop()
        return RoundResult(claimed, claimed)


async def test_full_rounds_run_back_to_back_and_small_ones_linger(settings: Settings) -> None:
    tuned = settings.model_copy(update={"match_batch_size": 10, "match_linger_s": 0.2, "match_poll_s": 5.0})
    matcher = Scripted(tuned, [10, 10, 3, 0])
    runner = asyncio.create_task(matcher.run())
    await asyncio.sleep(0.05)
    matcher.wake()  # after the small round: an accept arrives, the matcher still lingers
    await asyncio.wait_for(runner, 5)
    first, second, small, after = matcher.started
    assert second - first < 0.1  # a full round: the next one at once
    assert small - second < 0.1
    assert after - small >= 0.2  # woken at once, and lingered before the next round


async def test_after_an_idle_round_an_accept_is_taken_at_once(settings: Settings) -> None:
    tuned = settings.model_copy(update={"match_batch_size": 10, "match_linger_s": 1.0, "match_poll_s": 5.0})
    matcher = Scripted(tuned, [0, 1, 0])
    runner = asyncio.create_task(matcher.run())
    await asyncio.sleep(0.05)
    woken = time.monotonic()
    matcher.wake()
    await asyncio.sleep(0.05)
    matcher.stop()
    await asyncio.wait_for(runner, 5)
    assert matcher.started[1] - woken < 0.5  # no linger after an empty round


async def _lingering(settings: Settings) -> tuple[Scripted, asyncio.Task[None]]:
    """A matcher that lingers 5 s after its first, small round, running."""
    matcher = Scripted(settings.model_copy(update={"match_batch_size": 10, "match_poll_s": 5.0}), [3, 0])
    matcher.linger_s = 5.0
    runner = asyncio.create_task(matcher.run())
    await asyncio.sleep(0.05)
    return matcher, runner


async def test_a_waiting_client_cuts_the_linger_short(settings: Settings) -> None:
    """Lingering never holds a ``Prefer: wait`` request for the linger: its urgent wake starts the next round."""
    matcher, runner = await _lingering(settings)
    woken = time.monotonic()
    matcher.wake(urgent=True)  # after the small round: a client that waits for its document's result
    await asyncio.wait_for(runner, 5)
    assert matcher.started[1] - woken < 0.5


async def test_an_urgent_wake_during_a_linger_ends_it(settings: Settings) -> None:
    matcher, runner = await _lingering(settings)
    matcher.wake()  # an ordinary accept: the matcher lingers
    await asyncio.sleep(0.2)
    assert len(matcher.started) == 1
    woken = time.monotonic()
    matcher.wake(urgent=True)
    await asyncio.wait_for(runner, 5)
    assert matcher.started[1] - woken < 0.5


async def test_a_lingering_embedded_matcher_answers_a_waited_request_promptly(settings: Settings) -> None:
    """End to end: the embedded matcher lingers 5 s after a small round (an accept without ``Prefer: wait``);
    a document sent with ``Prefer: wait`` meanwhile gets its business result at once, not after the linger."""
    slow = {"match_linger_s": 5.0, "sqlite_match_linger_s": 5.0}
    async with serving(settings, wait=False, **slow) as (app, http):
        parties = await file_parties(http)
        order, payment, _ = purchase()
        first = await http.post("/api/v1/orders", json=order, headers=parties.platform)
        assert first.status_code == 202
        await asyncio.sleep(0.3)  # its round has run (one document: a small round), the linger has begun
        assert app.state.matcher.linger_s == 5.0
        started = time.monotonic()
        waited = await http.post("/api/v1/payments", json=payment, headers=parties.payment | {"Prefer": "wait=10"})
        elapsed = time.monotonic() - started
        assert waited.status_code == 201
        assert waited.json()["returnStatus"] == "120"
        assert elapsed < 2.5


async def test_the_embedded_matcher_on_sqlite_lingers_its_own_time(settings: Settings) -> None:
    async with serving(settings, match_linger_s=0.01, sqlite_match_linger_s=0.3) as (app, _):
        assert app.state.matcher.linger_s == (0.3 if settings.is_sqlite else 0.01)
