"""Group commit for single-document requests.

A single order costs about a dozen round trips and a commit, almost all of it fixed cost per transaction. When a
sender posts many documents at once over many connections, the requests that arrive while its previous unit of
work is running are written together in the next one (``intake.write_together``), the way databases group
commits: with no traffic waiting nothing waits, and under load the fixed cost is shared. The sender's key is
checked inside that transaction too, once per group, instead of on a connection of its own per request.

What does not change: each request still gets its answer only after the transaction holding its document has
committed (a 2xx means committed), with exactly the checks, the order of checks (401/403, then 415/400, then
422, then the document's own outcome), the results and the raw message it would have had alone. A failure of the
shared transaction (the database going away, say) fails each request of the group, which the sender retries as
it would have; a domain error stays with its own request. Groups are per key and document type, so one sender's
traffic never waits for another's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import run_in_transaction
from app.errors import DomainError
from app.observability import Metrics
from app.services.auth import authenticate
from app.services.intake import (
    DocType,
    IntakeItem,
    ItemResult,
    RawBody,
    Submission,
    check_sender,
    count_results,
    read_json_body,
    validate_document,
    write_together,
)

GroupKey = tuple[str, DocType]


@dataclass
class _Waiting:
    body: bytes
    content_type: str | None
    sessionmaker: async_sessionmaker[AsyncSession]
    answer: asyncio.Future[ItemResult]


@dataclass
class _Queue:
    key: str
    waiting: deque[_Waiting] = field(default_factory=deque)
    writers: int = 0


class GroupCommit:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self._settings, self._metrics = settings, metrics
        self._queues: dict[GroupKey, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key: str,
        doc_type: DocType,
        body: bytes,
        content_type: str | None,
    ) -> ItemResult:
        """The outcome of one single-document request sent with API key ``key``, once it is committed."""
        answer: asyncio.Future[ItemResult] = asyncio.get_running_loop().create_future()
        group_key = (hashlib.sha256(key.encode()).hexdigest(), doc_type)
        queue = self._queues.get(group_key)
        if queue is None:
            queue = self._queues[group_key] = _Queue(key)
        queue.waiting.append(_Waiting(body, content_type, sessionmaker, answer))
        if queue.writers < self._settings.group_commit_writers:
            # The writer is a task of its own: a request whose client goes away must not cancel the others.
            queue.writers += 1
            task = asyncio.create_task(self._write(group_key, queue, doc_type))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await answer

    async def _write(self, group_key: GroupKey, queue: _Queue, doc_type: DocType) -> None:
        try:
            while queue.waiting:
                group = self._take(queue)
                if self._metrics is not None:
                    self._metrics.group_commit_documents.observe(len(group))
                try:
                    results = await self._commit(queue.key, doc_type, group)
                except Exception as exc:  # the key was refused, or the transaction failed: each request answers so
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
                self._queues.pop(group_key, None)

    async def _commit(self, key: str, doc_type: DocType, group: list[_Waiting]) -> list[ItemResult]:
        settings = self._settings

        async def work(session: AsyncSession) -> list[list[ItemResult]]:
            principal = await authenticate(await session.connection(), key, settings.admin_token)
            check_sender(principal)
            submissions = [_submission(doc_type, waiting) for waiting in group]
            return await write_together(session, settings, principal, doc_type, submissions)

        results = await run_in_transaction(
            group[0].sessionmaker, work, retries=settings.max_transaction_retries, idempotent=True
        )
        count_results(self._metrics, doc_type, results)
        return [result for [result] in results]

    def _take(self, queue: _Queue) -> list[_Waiting]:
        group: list[_Waiting] = []
        while queue.waiting and len(group) < self._settings.group_commit_max_documents:
            group.append(queue.waiting.popleft())
        return group

    async def close(self) -> None:
        """Let the running groups finish (on shutdown: their requests are still waiting for an answer)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _submission(doc_type: DocType, waiting: _Waiting) -> Submission:
    """The request's one item: its document, or why it has none (415, 400, 422) — as the route would answer."""
    raw = RawBody(body=waiting.body, content_type=waiting.content_type or "application/json")
    try:
        data, raw = read_json_body(waiting.body, waiting.content_type)
        return Submission([IntakeItem(0, document=validate_document(doc_type, data))], raw)
    except DomainError as error:
        return Submission([IntakeItem(0, error=error)], raw)
