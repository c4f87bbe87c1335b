"""Agencies that fail in every way a network agency fails, and the outbox still gets each declaration to
each agency exactly once after its dedupe.

``sw mock-agencies`` injects, per call: 503, 429 with ``Retry-After: 1``, a hang past our read timeout, and
an answer recorded then held past our timeout ("did it land?"); a resetting TCP proxy in front of it
(``faults_proxy.py``) adds connection resets before the request reaches the agency and after it answered.
Two ``sw worker`` processes drain the outbox through it. Every dispatch must end ``delivered`` or ``dead``
(dead only after its last attempt), each delivered one answered by its agency under one key, its reply
recorded once; a 429's next try waits at least its ``Retry-After``.
"""

from __future__ import annotations

import math
import os
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import soak_level
from tests.factories import file_parties
from tests.figures import record_figure
from tests.live import clean_env
from tests.soak.crash_support import (
    agency_answers,
    agency_stats,
    agency_urls,
    ledger,
    mock_agencies,
    post_purchases,
    sw,
    wait_all_final,
)
from tests.soak.faults_proxy import ResettingProxy

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(900)]

SIZES = {"quick": 60, "full": 500}  # dispatches
FAILURE_RATE = 0.45  # 503 / 429 + Retry-After / hang, a third each
SLOW_ANSWER_RATE = 0.10  # of the calls that did not fail: recorded, answered after our timeout
RESET_BEFORE, RESET_AFTER = 0.05, 0.05
MAX_ATTEMPTS = 20
READ_TIMEOUT_S = 0.4


async def test_every_dispatch_ends_delivered_or_dead_and_each_agency_acts_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SW_SOAK_SEED", "6"))
    engine = app.state.engine
    parties = await file_parties(client)
    await post_purchases(client, parties, math.ceil(SIZES[soak_level()] / 4))
    started = time.monotonic()
    async with mock_agencies(
        tmp_path,
        SW_MOCK_SEED=str(seed),
        SW_MOCK_FAILURE_RATE=str(FAILURE_RATE),
        SW_MOCK_SLOW_ANSWER_RATE=str(SLOW_ANSWER_RATE),
        SW_MOCK_HANG_S=str(3 * READ_TIMEOUT_S),
    ) as agencies:
        upstream = int(agencies.rsplit(":", 1)[1])
        async with ResettingProxy(upstream, RESET_BEFORE, RESET_AFTER, seed) as proxy:
            env = clean_env(
                SW_DATABASE_URL=database_url,
                SW_AGENCY_URLS=agency_urls(f"http://127.0.0.1:{proxy.port}"),
                SW_PUBLIC_BASE_URL="http://127.0.0.1:9",
                SW_AGENCY_TIMEOUT_S=str(READ_TIMEOUT_S),
                SW_DISPATCH_BACKOFF_BASE_S="0.05",
                SW_DISPATCH_BACKOFF_CAP_S="2",
                SW_DISPATCH_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
                SW_DISPATCH_POLL_S="0.1",
            )
            workers = [sw("worker", env, tmp_path / f"worker-{n}.log").start() for n in (1, 2)]
            try:
                await wait_all_final(engine, lambda: all(w.alive() for w in workers), 600, "a worker")
            finally:
                for worker in workers:
                    worker.stop()
        answers = await agency_answers(agencies)
        stats = await agency_stats(agencies)
    seconds = time.monotonic() - started

    book = await ledger(engine, answers, MAX_ATTEMPTS)
    book.assert_clean()
    assert not book.dead_early, (
        f"dead before the last attempt (a transient fault taken as permanent): {book.dead_early}"
    )
    assert book.dispatches == 4 * book.records >= SIZES[soak_level()]
    throttled, waited = await _retry_after_respected(engine)
    assert waited == throttled, f"{throttled - waited} tries came back sooner than the agency's Retry-After"
    faults = {kind: sum(s["faults"][kind] for s in stats.values()) for kind in next(iter(stats.values()))["faults"]}
    requests = sum(s["requests"] for s in stats.values())
    delivered_pct = 100 * book.statuses["delivered"] / book.dispatches
    print(
        f"\nagency faults: {book.dispatches} dispatches {dict(book.statuses)}, {requests} calls reached the "
        f"agencies, faults {faults}, proxy {dict(proxy.counts)}, raw redeliveries {book.raw_redeliveries}, "
        f"attempts p50 {book.percentile_attempts(0.5)} p95 {book.percentile_attempts(0.95)} "
        f"max {max(book.attempts)}, 429 then ≥ Retry-After {waited}/{throttled}, {seconds:.1f} s"
    )
    record_figure(
        f"agency 30 % random 5xx — here {FAILURE_RATE:.0%} of calls fail (503 / 429 + Retry-After / hang past "
        f"the read timeout), {SLOW_ANSWER_RATE:.0%} answer after our timeout, "
        f"{RESET_BEFORE + RESET_AFTER:.0%} connection resets ({book.dispatches} dispatches, 2 workers)",
        f"delivered {delivered_pct:.0f} % (dead {book.statuses['dead']}) within {MAX_ATTEMPTS} attempts; "
        f"agency-side count 1 each; p95 attempts {book.percentile_attempts(0.95)}; "
        f"Retry-After respected {waited}/{throttled}",
        "100 % within max attempts; 1; reported; 100 %",
    )


async def _retry_after_respected(engine: AsyncEngine) -> tuple[int, int]:
    """Tries that got a 429 and had a next try; how many of those waited the agency's ``Retry-After`` (1 s)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT a.finished_at, b.started_at FROM dispatch_attempt a JOIN dispatch_attempt b "
                    "ON b.dispatch_id = a.dispatch_id AND b.attempt_no = a.attempt_no + 1 WHERE a.http_status = 429"
                )
            )
        ).all()
    return len(rows), sum(1 for finished, next_start in rows if next_start - finished >= timedelta(seconds=1))
