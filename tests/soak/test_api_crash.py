"""The API process SIGKILLed under ingest load, then restarted: every document it acknowledged (accepted:
202, or 200 for a replay) is processed by the matcher exactly once and in the database once; every purchase
whose three documents were acknowledged is one declared record.

``sw serve`` (embedded matcher on, embedded dispatcher off) over PostgreSQL, a load of ``Load.concurrency``
clients posting purchases and sending again, unchanged, whatever got no answer — what a platform does after a
crash. The kill takes the embedded matcher with it, mid-round or not. An answer lost to the kill after its
acceptance committed comes back on the retry as a replay (200, ``Idempotent-Replayed``), never as a second
submission. When the load stops, the restarted API's matcher drains the backlog before the checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import soak_level
from tests.factories import file_parties
from tests.figures import record_figure
from tests.live import clean_env, free_port
from tests.soak.crash_load import Load, stored_state
from tests.soak.crash_support import sw, wait_ready
from tests.soak.pipeline_check import pipeline_ledger, stop_local_matcher, wait_drained

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(900)]

SIZES = {"quick": 3, "full": 10}  # kills
CLIENTS = 8


async def test_api_sigkilled_under_load_keeps_every_acknowledged_document(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("SW_SOAK_SEED", "6")))
    await stop_local_matcher(app)  # the API process's matcher is the one under test
    parties = await file_parties(client)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = sw(
        "serve", clean_env(SW_DATABASE_URL=database_url, SW_EMBEDDED_DISPATCHER="false"), tmp_path / "api.log", port
    )
    load = Load(base, parties, concurrency=CLIENTS)
    stop = asyncio.Event()
    restarts: list[float] = []
    kills: list[float] = []
    api.start()
    running: asyncio.Task[None] | None = None
    try:
        await wait_ready(api, f"{base}/readyz")
        running = asyncio.create_task(load.run(stop))
        started = time.monotonic()
        for _ in range(SIZES[soak_level()]):
            await asyncio.sleep(rng.uniform(0.3, 1.5))  # under load, at a random moment
            assert not running.done()
            kills.append(time.monotonic())
            assert api.kill() == -signal.SIGKILL
            api.start()
            restarts.append(await wait_ready(api, f"{base}/readyz"))
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(running, 120)  # each client finishes its purchase
        await wait_drained(app.state.engine, 120, api.alive, "the API (embedded matcher)")
    finally:
        stop.set()
        if running is not None and not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        api.stop()
    seconds = time.monotonic() - started

    state = await stored_state(app.state.engine, load)
    state.assert_clean()
    book = await pipeline_ledger(app.state.engine, load.acked, load.purchases)
    book.assert_clean()
    assert set(load.acked.values()) <= {200, 202}, f"intake answers only accept: {set(load.acked.values())}"
    outcomes = load.outcomes()
    errors = sorted(o for o in outcomes if o.startswith("5"))
    assert not errors, f"server errors: {[(o, outcomes[o]) for o in errors]}\n{api.tail()}"
    assert not load.refused, load.refused[:5]
    assert len(load.purchases) > 0
    # Requests in flight when the process died (not the ones refused while it was down).
    cut = sum(
        1 for a in load.answers if a.outcome in ("cut", "timeout") and any(a.sent < k < a.received for k in kills)
    )
    print(
        f"\nAPI crash: {len(restarts)} kills, {len(load.acked)} documents acknowledged ({len(load.purchases)} "
        f"purchases), answers {dict(outcomes)}, in flight at a kill {cut}, "
        f"replayed after a cut {load.replayed_after_cut}, "
        f"restart to ready {max(restarts):.1f} s max, {seconds:.1f} s"
    )
    record_figure(
        f"API SIGKILL under load ({len(restarts)} kills, {CLIENTS} clients, {len(load.acked)} documents acknowledged)",
        f"acknowledged lost {len(state.lost) + len(book.lost)}; processed exactly once "
        f"{book.exactly_once}/{book.submissions}; "
        f"duplicate documents / records / dispatches {len(state.duplicate_documents)} / "
        f"{len(state.duplicate_records)} / {len(book.duplicate_dispatches)}; 500s {outcomes['500']} "
        f"(requests cut by a kill {cut}; of them committed before the cut, "
        f"replayed on retry {load.replayed_after_cut})",
        "0; all; 0 / 0 / 0; 0",
    )
