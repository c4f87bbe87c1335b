"""``Prefer: wait=N`` (RFC 7240): hold an intake answer until the match stage has processed the request's
submissions, or N seconds pass.

A matcher in this process wakes the waiters as soon as it commits a round; a matcher in another process is
seen by a short poll of the submissions' state. Either way the answer is read back from the database, so it
is exactly the stored business receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import DomainError
from app.models import Document, MatchRecord, Submission
from app.schemas.records import Receipt
from app.services.intake import ItemResult, receipt_of

MAX_WAIT_S = 30
POLL_S = 0.1  # how often a waiter looks when the matcher runs in another process
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d{1,6})\"?", re.IGNORECASE)


def requested_wait(prefer: str | None) -> int | None:
    """The seconds asked for by ``Prefer: wait=N`` (capped at 30), or None."""
    if not prefer:
        return None
    found = _WAIT.search(prefer)
    return min(int(found.group(1)), MAX_WAIT_S) if found else None


class Waiters:
    """Wakes every waiter of this process when a matcher here commits a round."""

    def __init__(self) -> None:
        self._round = asyncio.Event()

    def processed(self) -> None:
        self._round.set()
        self._round = asyncio.Event()

    async def next_round(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._round.wait(), seconds)


class StoredProblem(DomainError):
    """A problem the match stage stored as a submission's business result, raised again as it was."""

    def __init__(self, problem: dict[str, Any]) -> None:
        extra = {k: v for k, v in problem.items() if k not in {"type", "title", "status", "code", "detail"}}
        super().__init__(
            str(problem.get("detail", "")), code=str(problem["code"]), status=int(problem["status"]), **extra
        )
        self.title = str(problem.get("title", self.title))


@dataclass(frozen=True)
class Outcome:
    state: str
    http_status: int | None
    result: dict[str, Any] | None
    processed_at: datetime | None = None


async def wait_for_results(
    sessionmaker: async_sessionmaker[AsyncSession], waiters: Waiters, results: Sequence[ItemResult], seconds: float
) -> list[ItemResult]:
    """``results`` with each accepted item replaced by its business result, as far as known within ``seconds``."""
    seqs = sorted({r.seq for r in results if r.seq is not None})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    outcomes: dict[int, Outcome] = {}
    while seqs:
        async with sessionmaker() as session:
            rows = await session.execute(
                select(
                    Submission.seq, Submission.state, Submission.http_status, Submission.result, Submission.processed_at
                ).where(Submission.seq.in_(seqs), Submission.state != "pending")
            )
            for seq, state, http_status, result, processed_at in rows:
                outcomes[seq] = Outcome(state, http_status, result, processed_at)
        seqs = [s for s in seqs if s not in outcomes]
        left = deadline - loop.time()
        if not seqs or left <= 0:
            break
        await waiters.next_round(min(POLL_S, left))
    answers = [_answer(result, outcomes.get(result.seq)) if result.seq is not None else result for result in results]
    if any(a.receipt is not None and a.receipt.replayed and a.receipt.returnStatus == "120" for a in answers):
        async with sessionmaker() as session:
            answers = [await _as_it_stands(session, answer) for answer in answers]
    return answers


async def _as_it_stands(session: AsyncSession, answer: ItemResult) -> ItemResult:
    """A replay answers with the document as it is now, as a replay always has (not as it was first stored)."""
    receipt = answer.receipt
    if receipt is None or not receipt.replayed or receipt.returnStatus != "120":
        return answer
    owner, number = receipt.key.values()
    doc = await session.scalar(
        select(Document).where(
            Document.doc_type == receipt.documentType, Document.owner_code == owner, Document.business_no == number
        )
    )
    if doc is None:
        return answer
    record = await session.get(MatchRecord, doc.record_id) if doc.record_id else None
    now = receipt_of(doc, record, replayed=True)
    answer.receipt = now.model_copy(update={"submissionSeq": receipt.submissionSeq, "acceptedAt": receipt.acceptedAt})
    return answer


def _answer(accepted: ItemResult, outcome: Outcome | None) -> ItemResult:
    if outcome is None or outcome.state != "done" or outcome.result is None or outcome.http_status is None:
        return accepted  # not processed in time (or dead): the acceptance stands, the result follows
    at = outcome.processed_at
    if outcome.http_status >= 400:
        return ItemResult(
            accepted.index, outcome.http_status, error=StoredProblem(outcome.result), seq=accepted.seq, answered_at=at
        )
    receipt = Receipt.model_validate(outcome.result)
    status = outcome.http_status
    assert accepted.receipt is not None
    if accepted.receipt.replayed:
        receipt, status = receipt.model_copy(update={"replayed": True}), 200
    receipt = receipt.model_copy(update={"submissionSeq": accepted.seq, "acceptedAt": accepted.receipt.acceptedAt})
    return ItemResult(accepted.index, status, receipt=receipt, seq=accepted.seq, answered_at=at)
