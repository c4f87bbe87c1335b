"""The backup drill: a base backup of a system under load, restored to a new cluster, holds every document
acknowledged before the backup began, each once and whole, and the restored system carries on from there.

The test runs a PostgreSQL cluster of its own (``tests/pg_cluster.py``): ``sw serve`` (embedded matcher,
dispatcher and mock agencies) takes purchases from eight clients while ``pg_basebackup -X stream`` copies the
cluster; the load goes on during the copy. The copy is started as a cluster of its own, ``sw serve`` is started on
it, and once it has drained, every document acknowledged before the backup began is there exactly once with its
raw message and audit row, and every purchase complete by then is one declared record with its four dispatches
delivered. Documents acknowledged while the copy ran may or may not be in it: that window is the recovery point
of a base backup alone (docs/deployment.md, "Backup and restore").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.migrate import upgrade
from tests.conftest import ADMIN_TOKEN, soak_level
from tests.factories import file_parties
from tests.figures import record_figure
from tests.live import clean_env, free_port
from tests.pg_cluster import base_backup, clusters, new_cluster, pg_bin
from tests.soak.crash_load import Load, stored_state
from tests.soak.crash_support import NO_INSPECTION, sw, wait_all_final, wait_ready
from tests.soak.pipeline_check import wait_drained

pytestmark = [
    pytest.mark.soak,
    pytest.mark.postgres_only,
    pytest.mark.timeout(900),
    pytest.mark.skipif(pg_bin() is None, reason="needs the PostgreSQL server binaries (initdb, pg_basebackup)"),
]

SIZES = {"quick": (150, 2.0), "full": (3000, 5.0)}  # documents acknowledged before the backup; load after it (s)
DATABASE = "drill"


async def _serve(database_url: str, log: Path) -> tuple[object, str]:
    port = free_port()
    env = clean_env(
        SW_DATABASE_URL=database_url,
        SW_ADMIN_TOKEN=ADMIN_TOKEN,
        SW_DISPATCH_POLL_S="0.2",
        **NO_INSPECTION,
    )
    api = sw("serve", env, log, port).start()
    base = f"http://127.0.0.1:{port}"
    await wait_ready(api, f"{base}/readyz", timeout_s=120)
    return api, base


async def test_a_base_backup_under_load_restores_every_acknowledged_document(tmp_path: Path) -> None:
    before_backup, after_s = SIZES[soak_level()]
    bin_dir = pg_bin()
    assert bin_dir is not None
    with clusters() as made:
        primary = new_cluster(tmp_path / "primary", bin_dir)
        made.append(primary)
        primary.start()
        primary.psql(f"CREATE DATABASE {DATABASE}")
        url = primary.url(DATABASE, "postgresql+asyncpg")
        await asyncio.to_thread(upgrade, Settings(database_url=url))

        api, base = await _serve(url, tmp_path / "api.log")
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            parties = await file_parties(http)
        load = Load(base, parties, concurrency=8, timeout_s=30)
        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop))
        try:
            while len(load.acked) < before_backup:
                assert not running.done(), running
                assert api.alive(), api.tail()
                await asyncio.sleep(0.05)
            acked_before = dict(load.acked)
            purchases_before = list(load.purchases)
            backup, backup_s = await asyncio.to_thread(base_backup, primary, tmp_path / "restored")
            acked_at_end_of_backup = len(load.acked)
            await asyncio.sleep(after_s)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(running, 120)
            api.stop()
        assert not load.refused, load.refused[:5]
        primary.stop()  # the original is gone: only the copy is left

        made.append(backup)
        start_s = backup.start()
        restored_url = backup.url(DATABASE, "postgresql+asyncpg")
        restarted = time.monotonic()
        api, base = await _serve(restored_url, tmp_path / "api-restored.log")
        engine = create_async_engine(restored_url)
        try:
            await wait_drained(engine, 300, api.alive, "sw serve on the restored copy")
            await wait_all_final(engine, api.alive, 300, "sw serve on the restored copy")
            carried_on_s = time.monotonic() - restarted
            state = await stored_state(engine, replace(load, acked=acked_before, purchases=purchases_before))
            everything = await stored_state(engine, replace(load, purchases=[]))
        finally:
            api.stop()
            await engine.dispose()

    state.assert_clean()
    in_window = len(load.acked) - len(acked_before)
    lost_in_window = len(everything.lost)
    assert lost_in_window <= in_window
    size_mb = sum(f.stat().st_size for f in backup.data.rglob("*") if f.is_file()) / 1e6
    print(
        f"\nbackup drill: {len(acked_before)} documents acknowledged before the backup ({len(purchases_before)} "
        f"purchases), {acked_at_end_of_backup - len(acked_before)} during it, {len(load.acked)} in all; backup "
        f"{backup_s:.1f} s for {size_mb:.0f} MB; restored cluster up in {start_s:.1f} s, drained in "
        f"{carried_on_s:.1f} s; documents acknowledged after the backup began and not in the copy: "
        f"{lost_in_window} of {in_window}"
    )
    record_figure(
        f"Backup drill (pg_basebackup under load of 8 clients, restored to a new cluster; "
        f"{len(acked_before)} documents acknowledged before it)",
        f"acknowledged before the backup and lost {len(state.lost)}; duplicates "
        f"{len(state.duplicate_documents) + len(state.duplicate_records)}; partial {len(state.partial)}; "
        f"backup {backup_s:.1f} s ({size_mb:.0f} MB), restore to accepting {start_s:.1f} s",
        "0; 0; 0",
    )
