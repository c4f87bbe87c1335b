"""The matcher (``python -m app.matcher`` / ``sw matcher``) with a SIGKILL planted at one point of its round —
no hook in the app.

``run(point, nth)`` wraps, at import, the function of ``app.services.match_stage`` / ``app.matcher`` that
passes the chosen point, then runs ``app.matcher.main()``; the ``nth`` time that point is passed, the process
sends itself SIGKILL. Points:

- ``claim``  — ``claim`` returned a non-empty micro-batch: its rows locked (``FOR UPDATE``), nothing applied;
- ``apply``  — the batch applied, declared and its results written (flushed), the transaction not committed;
- ``commit`` — the round committed, before the process does anything else with it;
- ``none``   — no planted kill (killed from outside at a random moment, or left to finish).

Every matcher started this way prints ``claimed <n>`` for each micro-batch it claims (its log is the test's
count of which matcher took what).
"""

from __future__ import annotations

import os
from typing import Any

import app.matcher as matcher_module
import app.services.match_stage as stage
from tests.soak.crash_points import die_on

POINTS = ("none", "claim", "apply", "commit")


def install(point: str, nth: int) -> None:
    """Plant the kill; fails loudly if the functions it wraps have moved."""
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}; known: {POINTS}")
    passed = die_on(nth)
    claim, process, run_round = stage.claim, stage.process, matcher_module.run_round

    async def claim_and_count(session: Any, limit: int, seqs: Any = None) -> Any:
        rows = await claim(session, limit, seqs)
        if rows:
            print(f"claimed {len(rows)}", flush=True)
            if point == "claim":
                passed()
        return rows

    async def process_then_die(session: Any, settings: Any, rows: Any) -> None:
        await process(session, settings, rows)
        await session.flush()  # everything written, uncommitted
        passed()

    async def round_then_die(sessionmaker: Any, settings: Any) -> Any:
        result = await run_round(sessionmaker, settings)
        if result.claimed:
            passed()
        return result

    stage.claim = claim_and_count  # type: ignore[assignment]
    if point == "apply":
        stage.process = process_then_die  # type: ignore[assignment]
    elif point == "commit":
        matcher_module.run_round = round_then_die  # type: ignore[assignment]


def run(point: str, nth: int) -> None:
    install(point, nth)
    matcher_module.main()


if __name__ == "__main__":
    run(os.environ.get("SW_CRASH_POINT", "none"), int(os.environ.get("SW_CRASH_NTH", "1")))
