"""The matcher SIGKILLed over and over — at random moments and at the points of its round where a crash hurts
most — then restarted, until the backlog is drained: every accepted document processed exactly once, no
duplicate document, record or dispatch, every complete purchase declared.

Real processes over PostgreSQL: documents are accepted through the app in this process (its own matcher off),
so they wait as ``pending`` submissions; the matchers are ``app.matcher.main()`` (the code of
``python -m app.matcher``; ``crash_matcher.py`` plants the kill) forked by ``crash_forkserver.py``. Micro-
batches are small (10), so each incarnation applies a few before it dies and a purchase's three documents
(accepted 10 or more submissions apart) fall into different batches, often of different incarnations.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from app.config import Settings
from tests.conftest import serving, soak_level
from tests.factories import file_parties, purchase
from tests.figures import record_figure
from tests.live import clean_env
from tests.soak.crash_forkserver import ForkedProcess
from tests.soak.pipeline_check import (
    accept,
    matcher_started,
    pending,
    pipeline_ledger,
    spawn_matcher,
    wait_drained,
)

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(1200)]

SIZES = {"quick": (16, 300), "full": (60, 1_050)}  # kills, documents (at least)
POINTS = ("random", "claim", "apply", "commit")
NTH = 3  # a planted kill fires at a pass drawn from 1..NTH
CHUNK = 10  # purchases accepted at a time (30 documents: 10 orders, then 10 payments, then 10 waybills)


async def test_matcher_sigkilled_at_random_and_planted_points_processes_each_document_once(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    kills_wanted, documents_wanted = SIZES[soak_level()]
    rng = random.Random(int(os.environ.get("SW_SOAK_SEED", "6")))
    acknowledged: list[tuple[str, str, str]] = []
    complete: list[tuple[str, str]] = []
    kills: Counter[str] = Counter()
    matchers: list[ForkedProcess] = []
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        engine = app.state.engine

        async def more() -> None:
            triples = [purchase(own_buyer=True) for _ in range(CHUNK)]
            for position, doc_type in enumerate(("order", "payment", "waybill")):
                acknowledged.extend(await accept(http, parties, doc_type, [t[position] for t in triples]))
            complete.extend((t[0]["ebpCode"], t[0]["orderNo"]) for t in triples)

        env = clean_env(SW_DATABASE_URL=database_url, SW_MATCH_BATCH_SIZE="10", SW_MATCH_POLL_S="0.05")

        def spawn(point: str, nth: int = 0) -> ForkedProcess:
            log = tmp_path / f"matcher-{len(matchers) + 1:03d}-{point}.log"
            matchers.append(spawn_matcher(env, log, "none" if point == "random" else point, nth))
            return matchers[-1]

        started = time.monotonic()
        try:
            schedule: list[str] = []
            while sum(kills.values()) < kills_wanted or len(acknowledged) < documents_wanted:
                if await pending(engine) < 3 * CHUNK:
                    await more()  # every kill lands on work in progress
                if not schedule:  # each kind in turn, in a shuffled order
                    schedule = rng.sample(POINTS, len(POINTS))
                point = schedule.pop()
                if point == "random":  # at a random moment of its work, not of its start-up
                    matcher = spawn(point)
                    code = await matcher_started(matcher) or await matcher.wait_exit(rng.uniform(0, 0.4))
                else:
                    matcher = spawn(point, rng.randint(1, NTH))
                    code = await matcher.wait_exit(5)
                    if code is None:  # it never passed the point that often: out of work meanwhile
                        point = "random"
                if code is None:
                    code = matcher.kill()
                assert code == -signal.SIGKILL, f"matcher {matcher.pid} exited {code}:\n{matcher.tail()}"
                kills[point] += 1
            # Then one matcher left alone: it must finish everything, the killed ones' batches included.
            left_after_kills = await pending(engine)
            last = spawn("none")
            await wait_drained(engine, 120, last.alive, "the last matcher")
        finally:
            for matcher in matchers:
                matcher.stop()
        seconds = time.monotonic() - started

        book = await pipeline_ledger(engine, acknowledged, complete)
    book.assert_clean()
    assert book.submissions == len(acknowledged) >= documents_wanted
    assert book.outcomes == {"stored": len(acknowledged)}, book.outcomes
    assert book.records == len(complete)
    assert book.dispatches == 4 * len(complete)
    assert all(kills[p] for p in POINTS), f"every kind of kill happened: {kills}"
    print(
        f"\nmatcher crash: {sum(kills.values())} kills {dict(kills)}, {book.submissions} submissions "
        f"{dict(book.outcomes)}, {book.records} records, {book.dispatches} dispatches, "
        f"pending when the kills stopped {left_after_kills}, {seconds:.1f} s"
    )
    record_figure(
        f"matcher SIGKILL at random/injected points ({sum(kills.values())} kills: {kills['random']} random, "
        f"{kills['claim']} after claim, {kills['apply']} before commit, {kills['commit']} after commit; "
        f"{book.submissions} documents accepted, {len(complete)} purchases)",
        f"processed exactly once {book.exactly_once}/{book.submissions} (lost {len(book.lost)}, "
        f"pending or dead {len(book.not_done)}, applied twice {len(book.processed_twice)}); duplicate records "
        f"{len(book.duplicate_records)}; duplicate dispatches {len(book.duplicate_dispatches)}; "
        f"declared {len(complete) - len(book.undeclared)}/{len(complete)}",
        "each exactly once; 0; 0; all",
    )
