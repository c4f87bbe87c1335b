"""The database goes away under load and comes back: ingest answers 503 problem+json
``DATABASE_UNAVAILABLE`` meanwhile (never a 500, never a hang, never a partial write), recovers by itself,
and no acknowledged document is lost or stored twice.

The PostgreSQL server is shared, so the test does not restart it: it makes *its own database* fail the way a
restart does — every backend terminated at once (what ``pg_ctl restart -m fast`` does to each session), and
for an outage, ``ALTER DATABASE … ALLOW_CONNECTIONS false`` plus the terminations, then allowed again (new
connections are refused meanwhile, as by a server that is down). With ``SW_SOAK_PG_RESTART=1`` the outages are
real restarts of the local cluster instead (``SW_SOAK_PG_RESTART_CMD``, by default
``pg_ctlcluster --skip-systemctl-redirect 15 main restart``) — only on a machine that is yours alone.

``sw serve`` runs with its embedded matcher, dispatcher and mock agencies, so the match stage and the outbox
live through the outages too: intake acknowledges with 202 (accepted), the matcher applies what was accepted
whenever the database lets it, and at the end every acknowledged document is processed exactly once, every
dispatch delivered, each agency acted once per record. (``test_matcher_db_restart.py`` takes the database away
from standalone matchers working through a backlog.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import shlex
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tests.conftest import soak_level
from tests.factories import file_parties
from tests.figures import record_figure
from tests.live import clean_env, free_port
from tests.soak.crash_load import Answer, Load, stored_state
from tests.soak.crash_support import NO_INSPECTION, agency_answers, ledger, sw, wait_all_final, wait_ready
from tests.soak.pipeline_check import pipeline_ledger, stop_local_matcher, wait_drained

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(900)]

SIZES = {"quick": (3, 1, 3.0), "full": (10, 3, 5.0)}  # backend-termination rounds, outages, seconds down
CLIENTS = 8
PG_RESTART = os.environ.get("SW_SOAK_PG_RESTART") == "1"
PG_RESTART_CMD = os.environ.get("SW_SOAK_PG_RESTART_CMD", "pg_ctlcluster --skip-systemctl-redirect 15 main restart")
UNAVAILABLE = "DATABASE_UNAVAILABLE"


class OwnDatabase:
    """Administers the test's own database from the maintenance database: never another database."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.name = url.database or ""
        assert self.name not in ("", "postgres", "template0", "template1"), self.name
        admin = os.environ.get("PG_ADMIN_URL") or url.set(
            drivername="postgresql", database="postgres"
        ).render_as_string(hide_password=False)
        self.admin_url = admin
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> OwnDatabase:
        self.conn = await asyncpg.connect(self.admin_url)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.conn is not None
        if not self.conn.is_closed():
            await self.allow_connections(True)
            await self.conn.close()
        else:  # a real restart closed it
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
            finally:
                await conn.close()

    async def terminate_backends(self) -> int:
        assert self.conn is not None
        rows = await self.conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.name,
        )
        return sum(1 for r in rows if r[0])

    async def allow_connections(self, allowed: bool) -> None:
        assert self.conn is not None
        await self.conn.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {str(allowed).lower()}')


async def test_database_outages_under_load_give_503_then_recover_with_nothing_lost(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    rounds, outages, down_s = SIZES[soak_level()]
    rng = random.Random(int(os.environ.get("SW_SOAK_SEED", "6")))
    await stop_local_matcher(app)  # the API process's matcher is the one under test
    parties = await file_parties(client)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        SW_DATABASE_URL=database_url,
        SW_DISPATCH_LEASE_S="2",
        SW_DISPATCH_POLL_S="0.2",
        SW_MOCK_INSPECTION_DELAY_MS="10",
        **NO_INSPECTION,
    )
    api = sw("serve", env, tmp_path / "api.log", port).start()
    load = Load(base, parties, concurrency=CLIENTS, timeout_s=30)
    stop = asyncio.Event()
    windows: list[tuple[float, float]] = []  # (down, allowed again): nothing may be stored in between
    terminated = 0
    started = time.monotonic()
    running: asyncio.Task[None] | None = None
    try:
        await wait_ready(api, f"{base}/readyz")
        running = asyncio.create_task(load.run(stop))
        # This process holds no pooled connection when the backends are cut (a killed one would be left to the
        # garbage collector, and its ResourceWarning would fail whichever test runs then).
        await app.state.engine.dispose()
        async with OwnDatabase(database_url) as db:
            await asyncio.sleep(1.0)
            for _ in range(rounds):  # the blip of a fast restart: every session cut at once
                terminated += await db.terminate_backends()
                await asyncio.sleep(rng.uniform(0.3, 1.0))
            for _ in range(outages):  # down for a while, then back
                if PG_RESTART:
                    down = time.monotonic()
                    restart = await asyncio.create_subprocess_exec(*shlex.split(PG_RESTART_CMD))
                    assert await restart.wait() == 0, PG_RESTART_CMD
                    windows.append((down, time.monotonic()))
                    await _wait_recovered(load, windows[-1][1])
                    continue
                await db.allow_connections(False)
                terminated += await db.terminate_backends()
                down = time.monotonic()
                await asyncio.sleep(down_s)
                await db.allow_connections(True)
                windows.append((down, time.monotonic()))
                await _wait_recovered(load, windows[-1][1])
                await asyncio.sleep(0.5)
        # The test's own engine lost its pooled connections too: start it afresh for the checks.
        await app.state.engine.dispose()
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(running, 120)
        await wait_drained(app.state.engine, 120, api.alive, "the API (embedded matcher)")
        await wait_all_final(app.state.engine, api.alive, 120, "the API (embedded dispatcher)")
        answers = await agency_answers(base)
    finally:
        stop.set()
        if running is not None and not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        api.stop()
    seconds = time.monotonic() - started
    gc.collect()  # a socket this test leaked is reported here, not in a later test

    state = await stored_state(app.state.engine, load)
    state.assert_clean()
    book_in = await pipeline_ledger(app.state.engine, load.acked, load.purchases)
    book_in.assert_clean()
    outcomes = load.outcomes()
    assert not load.refused, load.refused[:5]
    assert not [o for o in outcomes if o.startswith("5") and o != "503"], f"{dict(outcomes)}\n{api.tail()}"
    assert outcomes["cut"] == outcomes["timeout"] == 0, f"the API hung or dropped a connection: {dict(outcomes)}"
    wrong_503 = [
        a
        for a in load.answers
        if a.outcome == "503" and (a.code != UNAVAILABLE or "problem+json" not in a.content_type)
    ]
    assert not wrong_503, wrong_503[:3]
    # Sent once the backends were gone, answered before connections were allowed again: 503, nothing else.
    during = [a for a in load.answers if any(d + 0.2 < a.sent and a.received < up for d, up in windows)]
    if not PG_RESTART:  # (a real restart may be over, and answering, before its command returns)
        assert during, "no request was sent while the database was down"
        assert all(a.outcome == "503" for a in during), f"while down: {sorted({a.outcome for a in during})}"
    recovery = [_first_success_after(load.answers, up) for _, up in windows]
    book = await ledger(app.state.engine, answers, max_attempts=12)
    book.assert_clean()
    # The agencies never fail here: a dead dispatch would be the outage taken for the agency's refusal.
    assert book.statuses["dead"] == 0, dict(book.statuses)
    print(
        f"\ndatabase restart: {rounds} rounds of terminations + {len(windows)} outages of {down_s} s "
        f"({terminated} backends terminated), {len(load.acked)} documents acknowledged ({len(load.purchases)} "
        f"purchases), answers {dict(outcomes)}, 503 while down {len(during)}, "
        f"recovery {[round(r, 2) for r in recovery]} s, "
        f"replayed after a failure {load.replayed_after_cut}, dispatches {dict(book.statuses)}, {seconds:.1f} s"
    )
    outage = "cluster restarts" if PG_RESTART else f"outages of {down_s:.0f} s"
    record_figure(
        f"DB restart under load ({rounds} rounds of terminations of every backend + {len(windows)} {outage}, "
        f"{len(load.acked)} documents acknowledged)",
        f"acknowledged lost {len(state.lost) + len(book_in.lost)}; processed exactly once "
        f"{book_in.exactly_once}/{book_in.submissions}; "
        f"duplicate records {len(state.duplicate_records) + len(state.duplicate_documents)}; "
        f"500s {outcomes['500']} ({outcomes['503']} × 503 DATABASE_UNAVAILABLE); recovery {max(recovery):.1f} s",
        "0; all; 0; 0 (503 allowed during outage); ≤ 10 s",
    )


async def _wait_recovered(load: Load, up: float, limit_s: float = 60) -> None:
    """Until the load gets a 2xx for a request sent after the database came back (no operator action)."""
    while not any(a.sent >= up and a.outcome.startswith("2") for a in load.answers[-200:]):
        assert time.monotonic() - up < limit_s, f"no 2xx {limit_s} s after the database came back"
        await asyncio.sleep(0.05)


def _first_success_after(answers: list[Answer], up: float) -> float:
    return min(a.received for a in answers if a.sent >= up and a.outcome.startswith("2")) - up
