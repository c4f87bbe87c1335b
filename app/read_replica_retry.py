"""A read the replica cancelled is asked again, once, of the primary (or answered 503), never a 500.

A hot standby cancels a query whose rows or locks the WAL it replays takes away — "canceling statement due to
conflict with recovery": SQLSTATE 40001 (a snapshot, lock, buffer-pin or tablespace conflict) or 40P01 (a
deadlock with the startup process) — once ``max_standby_streaming_delay`` has passed. Nothing was wrong with the
read: the same request on the primary answers it. Routed reads are GETs (read-only, no body to keep), so the
whole request runs again with the primary as its read source (``X-Read-Fallback: conflict``), or, with
``SW_READ_FALLBACK`` off, answers ``503 READ_REPLICA_UNAVAILABLE`` (app/deps.py ``read_source``).

A replica that goes away in the middle of a read (stopped, restarted, its connection cut: a connection-class
error the error handlers would answer ``503 DATABASE_UNAVAILABLE``) is handled the same way: it is marked
unreachable for ``SW_READ_RETRY_S`` and the request runs again, answered by the primary
(``X-Read-Fallback: unreachable``) or, with fallback off, ``503 READ_REPLICA_UNAVAILABLE``.

Only before the answer has started: a streamed CSV export cancelled after its first rows ends unfinished (the
chunked body is cut short, which clients see as an error), as it would if the connection broke.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import database_gone
from app.read_replica import ReadSource

log = logging.getLogger(__name__)

RECOVERY_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
# request.state flag: this request's reads go to the primary, the replica having cancelled them once.
REPLICA_CONFLICT = "replica_conflict"


def recovery_conflict(exc: BaseException) -> bool:
    """``exc`` is (or was caused by) a statement the database cancelled for a recovery conflict."""
    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain is short; a bound keeps a cycle from looping
        if seen is None:
            return False
        if isinstance(seen, DBAPIError):
            sqlstate = getattr(seen.orig, "sqlstate", None) or getattr(seen.orig, "pgcode", None)
            return str(sqlstate) in RECOVERY_CONFLICT_SQLSTATES
        seen = seen.__cause__ or seen.__context__
    return False


class ReplicaConflictRetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        started = False
        received: list[Message] = []

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def kept_receive() -> Message:
            message = await receive()
            received.append(message)
            return message

        try:
            await self.app(scope, kept_receive, watched_send)
        except Exception as exc:
            source = scope.get("state", {}).get("read_source")
            from_replica = isinstance(source, ReadSource) and source.name == "replica"
            if started or not from_replica:
                raise
            if recovery_conflict(exc):
                log.warning("the read replica cancelled a read (%s); asking the primary", exc.__class__.__name__)
                scope["state"][REPLICA_CONFLICT] = True
            elif database_gone(exc):  # the exceptions the error handlers leave to us on a replica read
                log.warning("the read replica went away during a read (%s); asking again", exc.__class__.__name__)
                scope["app"].state.read_replica.lost()
            else:
                raise
            replay = list(received)

            async def replayed_receive() -> Message:
                return replay.pop(0) if replay else await receive()

            await self.app(scope, replayed_receive, send)
