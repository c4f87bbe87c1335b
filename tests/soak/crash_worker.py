"""The dispatcher (``sw worker``) with a SIGKILL planted at one point of its unit of work — no hook in the app.

``python -m tests.soak.crash_worker`` runs ``app.worker.main()`` after wrapping, at import, the function
that passes the chosen point; the ``SW_CRASH_NTH``-th time that point is passed, the process sends itself
SIGKILL. ``SW_CRASH_POINT``:

- ``claim``  — after ``claim_due`` committed a non-empty batch (rows in flight, nothing sent);
- ``send``   — after an agency answered 2xx (a declaration, or a batch of them), before the outcome is recorded
  (the agency acted, we don't know);
- ``commit`` — after the outcome and the attempt row are written (flushed), before the transaction commits;
- ``none``   — no planted kill (the test kills it from outside at a random moment, or lets it finish).

The suites start it through ``crash_forkserver.py`` (``crash: [point, nth]``), which saves the imports.
"""

from __future__ import annotations

import os
from typing import Any

import app.services.dispatch as dispatch_module
import app.worker as worker_module
from app.adapters.base import HttpAgencyAdapter
from tests.soak.crash_points import die_on

POINTS = ("none", "claim", "send", "commit")


def install(point: str, nth: int) -> None:
    """Plant the kill; fails loudly if the app's functions it wraps have moved."""
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}; known: {POINTS}")
    passed = die_on(nth)
    if point == "claim":
        claim_due = worker_module.claim_due

        async def claim_then_die(*args: Any, **kwargs: Any) -> Any:
            claims = await claim_due(*args, **kwargs)
            if claims:
                passed()
            return claims

        worker_module.claim_due = claim_then_die  # type: ignore[assignment]
    elif point == "send":
        submit = HttpAgencyAdapter.submit

        async def submit_then_die(self: HttpAgencyAdapter, package: dict[str, Any], dispatch_id: str) -> Any:
            answer = await submit(self, package, dispatch_id)
            passed()
            return answer

        submit_batch = HttpAgencyAdapter.submit_batch

        async def submit_batch_then_die(self: HttpAgencyAdapter, items: list[tuple[str, dict[str, Any]]]) -> Any:
            results = await submit_batch(self, items)
            passed()
            return results

        HttpAgencyAdapter.submit = submit_then_die  # type: ignore[method-assign]
        HttpAgencyAdapter.submit_batch = submit_batch_then_die  # type: ignore[method-assign]
    elif point == "commit":
        run_in_transaction = dispatch_module.run_in_transaction

        async def run_then_die(sessionmaker: Any, work: Any, **kwargs: Any) -> Any:
            if getattr(work, "__name__", "") != "record_outcome":
                return await run_in_transaction(sessionmaker, work, **kwargs)

            async def record_then_die(session: Any) -> Any:
                outcome = await work(session)
                await session.flush()  # the outcome and the attempt row are in the database, uncommitted
                passed()
                return outcome

            return await run_in_transaction(sessionmaker, record_then_die, **kwargs)

        dispatch_module.run_in_transaction = run_then_die  # type: ignore[assignment]


def run(point: str, nth: int) -> None:
    install(point, nth)
    worker_module.main()


if __name__ == "__main__":
    run(os.environ.get("SW_CRASH_POINT", "none"), int(os.environ.get("SW_CRASH_NTH", "1")))
