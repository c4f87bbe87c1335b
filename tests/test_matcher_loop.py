"""The matcher's loop: full rounds follow each other at once, a small round lets documents gather before the
next, and after an idle spell a document is taken as soon as an accept wakes the matcher."""

from __future__ import annotations

import asyncio
import time

from app.config import Settings
from app.matcher import Matcher
from app.services.match_stage import RoundResult


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
