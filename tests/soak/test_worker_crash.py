"""The dispatcher SIGKILLed over and over — at random moments and at the three points where a crash hurts
most — then restarted, until every dispatch is delivered or dead: nothing lost, nothing acted on twice after
the agency's dedupe; the redeliveries the crashes cost are counted.

Real processes over PostgreSQL: the mock agencies as ``sw mock-agencies``, the workers as ``app.worker.main``
(the code of ``sw worker``, ``crash_worker.py`` plants the kill) forked by ``crash_forkserver.py``.
The lease is 1 s, so the reaper gives a killed worker's in-flight dispatches to the next one quickly.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import soak_level
from tests.factories import file_parties
from tests.figures import record_figure
from tests.live import clean_env
from tests.soak.crash_forkserver import ForkedProcess, forkserver
from tests.soak.crash_support import (
    agency_answers,
    agency_stats,
    agency_urls,
    ledger,
    mock_agencies,
    open_dispatches,
    post_purchases,
    wait_all_final,
)

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(1200)]

SIZES = {"quick": (15, 60), "full": (100, 500)}  # kills, dispatches (at least)
POINTS = ("random", "claim", "send", "commit")
NTH = {"claim": 3, "send": 12, "commit": 12}  # the planted kill fires at a pass drawn from 1..NTH
MAX_ATTEMPTS = 12  # the default


async def test_worker_sigkilled_at_random_and_planted_points_loses_and_doubles_nothing(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    kills_wanted, dispatches_wanted = SIZES[soak_level()]
    rng = random.Random(int(os.environ.get("SW_SOAK_SEED", "6")))
    engine = app.state.engine
    parties = await file_parties(client)
    await post_purchases(client, parties, math.ceil(dispatches_wanted / 4))
    started = time.monotonic()
    kills: Counter[str] = Counter()
    # Agency latency and small batches make each incarnation deliver a handful before it dies.
    async with mock_agencies(tmp_path, SW_MOCK_LATENCY_MS="20") as agencies:
        env = clean_env(
            SW_DATABASE_URL=database_url,
            SW_AGENCY_URLS=agency_urls(agencies),
            SW_PUBLIC_BASE_URL="http://127.0.0.1:9",
            SW_DISPATCH_LEASE_S="1",
            SW_DISPATCH_POLL_S="0.1",
            SW_DISPATCH_BATCH_SIZE="4",
            SW_DISPATCH_BACKOFF_BASE_S="0.05",
            SW_DISPATCH_BACKOFF_CAP_S="0.5",
            SW_DISPATCH_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        )
        workers: list[ForkedProcess] = []

        def spawn(point: str, nth: int = 1) -> ForkedProcess:
            crash = (point, nth) if point != "random" else None
            log = tmp_path / f"worker-{len(workers) + 1:03d}-{point}.log"
            workers.append(forkserver().spawn(["worker"], env, log, crash))
            return workers[-1]

        try:
            schedule: list[str] = []
            while sum(kills.values()) < kills_wanted:
                if await open_dispatches(engine) < 8:
                    await post_purchases(client, parties, 4)  # every kill lands on work in progress
                if not schedule:  # each kind in turn, in a shuffled order
                    schedule = rng.sample(POINTS, len(POINTS))
                point = schedule.pop()
                if point == "random":  # at a random moment of its work, not of its start-up
                    worker = spawn(point)
                    code = await _started(worker) or await worker.wait_exit(rng.uniform(0, 0.6))
                else:
                    worker = spawn(point, rng.randint(1, NTH[point]))
                    code = await worker.wait_exit(5)
                    if code is None:  # it never passed the point that often: out of work meanwhile
                        point = "random"
                if code is None:
                    code = worker.kill()
                assert code == -signal.SIGKILL, f"worker {worker.pid} exited {code}:\n{worker.tail()}"
                kills[point] += 1
            # Then one worker left alone: it must finish everything, the killed workers' leases included.
            left_after_kills = await open_dispatches(engine)
            worker = spawn("none")
            await wait_all_final(engine, worker.alive, 120, "the last worker")
        finally:
            for worker in workers:
                worker.stop()
        answers = await agency_answers(agencies)
        stats = await agency_stats(agencies)
    seconds = time.monotonic() - started

    book = await ledger(engine, answers, MAX_ATTEMPTS)
    book.assert_clean()
    assert book.records > 0
    assert book.dispatches == 4 * book.records
    assert book.dispatches >= dispatches_wanted
    assert all(kills[p] for p in POINTS), f"every kind of kill happened: {kills}"
    assert sum(s["replays"] for s in stats.values()) == book.raw_redeliveries
    print(
        f"\nworker crash: {sum(kills.values())} kills {dict(kills)}, {book.dispatches} dispatches "
        f"{dict(book.statuses)}, raw redeliveries {book.raw_redeliveries}, "
        f"p95 attempts {book.percentile_attempts(0.95)}, open when the kills stopped {left_after_kills}, "
        f"{seconds:.1f} s"
    )
    record_figure(
        f"worker SIGKILL at random/injected points ({sum(kills.values())} kills: {kills['random']} random, "
        f"{kills['claim']} after claim, {kills['send']} after send, {kills['commit']} before commit; "
        f"{book.dispatches} dispatches)",
        f"lost {book.lost}; duplicates {len(book.duplicates)}; raw redeliveries {book.raw_redeliveries} "
        f"(dead {book.statuses['dead']})",
        "0; 0; reported",
    )


async def _started(worker: ForkedProcess) -> int | None:
    """Until the worker has logged that it runs (None), or died before that (its exit code)."""
    for _ in range(2000):
        if (code := worker.server.exit_code(worker.pid)) is not None:
            return code
        if worker.log.exists() and "dispatcher started" in worker.log.read_text(errors="replace"):
            return None
        await asyncio.sleep(0.01)
    raise AssertionError(f"worker {worker.pid} did not start:\n{worker.tail()}")
