"""The database goes away while the matchers work through a backlog, and comes back: the matchers live
through it, resume by themselves, and every accepted document is processed exactly once — none lost, none
applied twice, none buried as ``dead`` for an outage that was not its fault.

Two ``app.matcher.main()`` processes (the code of ``python -m app.matcher``, forked by
``crash_forkserver.py``) with micro-batches of 10 work through submissions accepted by the app in this process
(its own matcher off). The database is taken away the way ``test_db_restart.py`` does it — every backend of
the test's own database terminated at once (a fast restart), and outages (``ALLOW_CONNECTIONS false`` plus the
terminations, then allowed again) — each time while submissions are pending (topped up before each cut).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from tests.conftest import serving, soak_level
from tests.factories import file_parties, purchase
from tests.figures import record_figure
from tests.live import clean_env
from tests.soak.pipeline_check import (
    accept,
    claimed,
    matcher_started,
    pending,
    pipeline_ledger,
    spawn_matcher,
    wait_drained,
)
from tests.soak.test_db_restart import OwnDatabase

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(900)]

SIZES = {"quick": (3, 1, 3.0), "full": (10, 3, 5.0)}  # backend-termination rounds, outages, seconds down
MATCHERS = 2
BACKLOG = 300  # submissions pending before each cut, at least
CHUNK = 50  # purchases accepted at a time


async def test_database_restarts_while_matchers_work_lose_and_double_nothing(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    rounds, outages, down_s = SIZES[soak_level()]
    rng = random.Random(int(os.environ.get("SW_SOAK_SEED", "6")))
    acknowledged: list[tuple[str, str, str]] = []
    complete: list[tuple[str, str]] = []
    pending_at_cut: list[int] = []
    recovery: list[float] = []
    terminated = 0
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        engine = app.state.engine

        # This process holds no connection when the backends are cut (a killed pooled connection would be left
        # for the garbage collector): the app's pool is emptied after each use, the backlog watched without one.
        watch = create_async_engine(database_url, poolclass=NullPool)

        async def top_up() -> None:
            while await pending(watch) < BACKLOG:
                triples = [purchase(own_buyer=True) for _ in range(CHUNK)]
                for position, doc_type in enumerate(("order", "payment", "waybill")):
                    acknowledged.extend(await accept(http, parties, doc_type, [t[position] for t in triples]))
                complete.extend((t[0]["ebpCode"], t[0]["orderNo"]) for t in triples)
            await engine.dispose()
            pending_at_cut.append(await pending(watch))

        async def recovered(before: int) -> float:
            """Seconds from connections allowed again until the backlog shrinks (no operator action)."""
            up = time.monotonic()
            while (await pending(watch)) >= before:
                assert time.monotonic() - up < 60, "the matchers did not resume within 60 s"
                await asyncio.sleep(0.05)
            return time.monotonic() - up

        env = clean_env(SW_DATABASE_URL=database_url, SW_MATCH_BATCH_SIZE="10", SW_MATCH_POLL_S="0.05")
        logs = [tmp_path / f"matcher-{n + 1}.log" for n in range(MATCHERS)]
        await top_up()  # (empties the app's pool)
        matchers = [spawn_matcher(env, log) for log in logs]
        started = time.monotonic()
        try:
            assert not any(await asyncio.gather(*(matcher_started(m) for m in matchers)))
            async with OwnDatabase(database_url) as db:
                await asyncio.sleep(0.3)
                for _ in range(rounds):  # the blip of a fast restart: every session cut at once
                    await top_up()
                    terminated += await db.terminate_backends()
                    recovery.append(await recovered(pending_at_cut[-1]))
                    await asyncio.sleep(rng.uniform(0.1, 0.5))
                for _ in range(outages):  # down for a while, then back
                    await top_up()
                    await db.allow_connections(False)
                    terminated += await db.terminate_backends()
                    await asyncio.sleep(down_s)
                    await db.allow_connections(True)
                    recovery.append(await recovered(pending_at_cut[-1]))
            await wait_drained(watch, 120, lambda: all(m.alive() for m in matchers), "a matcher")
            seconds = time.monotonic() - started
            assert all(m.alive() for m in matchers), "a matcher exited"
        finally:
            for matcher in matchers:
                matcher.stop()
            await watch.dispose()
        gc.collect()  # a socket this test leaked is reported here, not in a later test
        book = await pipeline_ledger(engine, acknowledged, complete)
    failed_rounds = sum(log.read_text(errors="replace").count("match round failed") for log in logs)
    shares = [claimed(log) for log in logs]
    book.assert_clean()  # none dead, none lost, none applied twice
    assert book.submissions == len(acknowledged)
    assert book.outcomes == {"stored": len(acknowledged)}, book.outcomes
    assert book.records == len(complete)
    assert all(share > 0 for share in shares), shares
    print(
        f"\nmatcher DB restart: {rounds} rounds + {outages} outages of {down_s} s ({terminated} backends "
        f"terminated), pending at each cut {pending_at_cut[1:]}, {book.submissions} submissions "
        f"{dict(book.outcomes)}, failed rounds logged {failed_rounds}, claimed per matcher {shares}, "
        f"recovery {[round(r, 2) for r in recovery]} s, {seconds:.1f} s"
    )
    record_figure(
        f"DB restart while {MATCHERS} matchers work ({rounds} rounds of terminations of every backend + {outages} "
        f"outages of {down_s:.0f} s, each with ≥ {BACKLOG} submissions pending; {book.submissions} documents)",
        f"processed exactly once {book.exactly_once}/{book.submissions} (lost {len(book.lost)}, dead or "
        f"pending {len(book.not_done)}, applied twice {len(book.processed_twice)}); duplicate records / dispatches "
        f"{len(book.duplicate_records)} / {len(book.duplicate_dispatches)}; matchers resumed by themselves "
        f"{MATCHERS}/{MATCHERS} ({failed_rounds} failed rounds logged); recovery {max(recovery):.1f} s",
        "each exactly once; 0 / 0; all; ≤ 10 s",
    )
