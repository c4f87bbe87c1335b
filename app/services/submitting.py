"""One request's documents through the pipeline's front door: accept them, wake the matcher, and — when the
client asked with ``Prefer: wait=N`` — hold the answer until their business results are known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.services.accept import accept_documents
from app.services.auth import Principal
from app.services.intake import DocType, IntakeItem, ItemResult, RawBody
from app.services.waiting import wait_for_results


async def submit(
    state: Any, principal: Principal, doc_type: DocType, items: Sequence[IntakeItem], raw: RawBody, wait: int | None
) -> list[ItemResult]:
    """``state`` is the app's state: its sessionmaker, settings, filing cache, metrics, matcher and waiters."""
    results = await accept_documents(
        state.sessionmaker, state.settings, principal, doc_type, items, raw, state.filing_cache, state.engine
    )
    for result in results:
        outcome = "rejected" if result.error else "replayed" if result.status == 200 else "accepted"
        state.metrics.documents.labels(type=doc_type, outcome=outcome).inc()
    if state.matcher is not None and any(r.status == 202 for r in results):
        state.matcher.wake(urgent=bool(wait))
    if wait and any(r.seq is not None for r in results):
        results = await wait_for_results(state.sessionmaker, state.waiters, results, wait)
    return results
