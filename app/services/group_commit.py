"""Group commit for single-document requests.

A single order costs about a dozen round trips and a commit, almost all of it fixed cost per transaction. When a
sender posts many documents at once over many connections, the requests that arrive while its previous unit of
work is running are written together in the next one (``intake.submit_together``), the way databases group
commits: with no traffic waiting nothing waits, and under load the fixed cost is shared.

What does not change: each request still gets its answer only after the transaction holding its document has
committed (a 2xx means committed), with exactly the checks, results and raw message it would have had alone.
A failure of the shared transaction (the database going away, say) fails each request of the group, which the
sender retries as it would have; a domain error stays with its own item. Groups are per sender key and document
type, so one sender's traffic never waits for another's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.observability import Metrics
from app.services.auth import Principal
from app.services.intake import DocType, IntakeItem, ItemResult, RawBody, Submission, check_sender, submit_together

GroupKey = tuple[str, DocType]


@dataclass
class _Waiting:
    principal: Principal
    submission: Submission
    answer: asyncio.Future[list[ItemResult]]


@dataclass
class _Queue:
    waiting: deque[_Waiting] = field(default_factory=deque)
    writers: int = 0


class GroupCommit:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self._sessionmaker, self._settings, self._metrics = sessionmaker, settings, metrics
        self._queues: dict[GroupKey, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self, principal: Principal, doc_type: DocType, items: Sequence[IntakeItem], raw: RawBody
    ) -> list[ItemResult]:
        check_sender(principal)  # refused at once, not after waiting for a group
        answer: asyncio.Future[list[ItemResult]] = asyncio.get_running_loop().create_future()
        key = (principal.key_id, doc_type)
        queue = self._queues.setdefault(key, _Queue())
        queue.waiting.append(_Waiting(principal, Submission(items, raw), answer))
        if queue.writers < self._settings.group_commit_writers:
            # The writer is a task of its own: a request whose client goes away must not cancel the others.
            queue.writers += 1
            task = asyncio.create_task(self._write(key, queue, doc_type))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await answer

    async def _write(self, key: GroupKey, queue: _Queue, doc_type: DocType) -> None:
        try:
            while queue.waiting:
                group = self._take(queue)
                if self._metrics is not None:
                    self._metrics.group_commit_documents.observe(len(group))
                try:
                    results = await submit_together(
                        self._sessionmaker,
                        self._settings,
                        group[0].principal,
                        doc_type,
                        [w.submission for w in group],
                        self._metrics,
                    )
                except Exception as exc:
                    for waiting in group:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(exc)
                    continue
                for waiting, result in zip(group, results, strict=True):
                    if not waiting.answer.done():
                        waiting.answer.set_result(result)
        finally:
            queue.writers -= 1
            if not queue.waiting and not queue.writers:
                self._queues.pop(key, None)

    def _take(self, queue: _Queue) -> list[_Waiting]:
        group: list[_Waiting] = []
        size = 0
        while queue.waiting and (not group or size + len(queue.waiting[0].submission.items) <= self._limit):
            waiting = queue.waiting.popleft()
            group.append(waiting)
            size += len(waiting.submission.items)
        return group

    @property
    def _limit(self) -> int:
        return self._settings.group_commit_max_documents

    async def close(self) -> None:
        """Let the running groups finish (on shutdown: their requests are still waiting for an answer)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
