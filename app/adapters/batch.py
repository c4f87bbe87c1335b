"""Sending a batch through any adapter: ``submit_batch`` when it has one, else ``submit`` per declaration
(adapters written before batches, named in configuration, keep working). Whatever goes wrong comes back
as the failing declarations' ``AgencyError`` — never raised — so each declaration gets its own outcome.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.adapters.base import (
    AgencyAdapter,
    AgencyAnswer,
    AgencyError,
    BatchAgencyAdapter,
    PermanentAgencyError,
    RetryableAgencyError,
)

log = logging.getLogger(__name__)

Result = AgencyAnswer | AgencyError


async def send_batch(
    adapter: AgencyAdapter | None, agency: str, items: list[tuple[str, dict[str, Any]]]
) -> list[Result]:
    """A result per ``(dispatch_id, package)`` of ``items``, in order; one adapter call when it batches."""
    if not items:
        return []
    if adapter is None:
        return [PermanentAgencyError(f"no adapter configured for {agency}") for _ in items]
    if not isinstance(adapter, BatchAgencyAdapter):
        outcomes = await asyncio.gather(*(adapter.submit(p, key) for key, p in items), return_exceptions=True)
        return [as_result(o, agency) for o in outcomes]
    try:
        results: Any = await adapter.submit_batch(items)
    except Exception as exc:  # the whole call failed: the same error for each of its declarations
        error = as_result(exc, agency)
        return [error for _ in items]
    if not isinstance(results, list) or len(results) != len(items):
        count = len(results) if isinstance(results, list) else type(results).__name__
        error = PermanentAgencyError(f"adapter bug: {count} results for {len(items)} declarations")
        log.error("%s: %s", agency, error)
        return [error for _ in items]
    return [as_result(r, agency) for r in results]


def as_result(outcome: object, agency: str) -> Result:
    """An answer, or the error a declaration's dispatch records: an agency error as it is; a socket failing
    under the adapter is retryable; anything else is a bug of the adapter and dead-letters (not retried forever)."""
    if isinstance(outcome, AgencyAnswer | AgencyError):
        return outcome
    if isinstance(outcome, OSError):
        return RetryableAgencyError(f"transport: {type(outcome).__name__}: {outcome}"[:1000])
    if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
        raise outcome  # cancellation, interpreter exit: not an outcome of the call
    if isinstance(outcome, Exception):
        log.error("adapter %s: unexpected failure", agency, exc_info=outcome)
        return PermanentAgencyError(f"unexpected: {type(outcome).__name__}: {outcome}"[:1000])
    return PermanentAgencyError(f"adapter bug: {type(outcome).__name__} is not an answer")
