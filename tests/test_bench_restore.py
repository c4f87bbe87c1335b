"""bench/restore.py at a tiny size: a throwaway cluster seeded, backed up, restored and checked (the RTO figures
of docs/scaling.md come from the same script at 1 M purchases)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.restore import run
from tests.pg_cluster import pg_bin

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.timeout(600),
    pytest.mark.skipif(pg_bin() is None, reason="needs the PostgreSQL server binaries (initdb, pg_basebackup)"),
]


async def test_restore_of_a_tiny_store_answers_whole(tmp_path: Path) -> None:
    figures = await run(purchases=200, templates=4, workdir=tmp_path)

    counts = figures["counts"]
    assert counts["match_record"] == 204  # the four templates and their 200 clones
    assert counts["document"] == 3 * 204
    assert counts["dispatch"] >= 4 * 200
    assert figures["database_mb"] > 0
    assert figures["backup_mb"] >= figures["database_mb"]
    assert min(figures["copy_s"], figures["start_s"], figures["first_answer_s"]) > 0
    assert figures["rto_s"] >= figures["copy_s"] + figures["start_s"] + figures["first_answer_s"] - 0.05
    assert os.listdir(tmp_path) == []  # the clusters and the backup are gone
