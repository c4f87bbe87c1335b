"""Accepting one document on PostgreSQL in one statement and one round trip.

The commonest request — one document from a sender whose key and named enterprises are in the filing cache —
needs no transaction of its own: a single statement is atomic. It reads the key's latest standing submission,
decides replay / conflict / new exactly as ``accept.decide`` does, and, when new, appends the raw message and the
submission in data-modifying CTEs. It runs on the pool's asyncpg connection directly, as a prepared statement
(asyncpg's per-connection cache): building and compiling it through SQLAlchemy cost more CPU than PostgreSQL
spends running it, and an explicit transaction cost two round trips more (BEGIN, COMMIT).

Concurrency is that of the general path under READ COMMITTED: two requests with the same new content at the
same instant may both be appended; the match stage applies the second as a replay.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import UNAVAILABLE_SQLSTATES

log = logging.getLogger(__name__)

# ``accept.decide`` in SQL: keep the two in step (tests/test_accept_pg.py compares them on every combination).
ACCEPT_ONE = """
WITH latest AS (
    SELECT seq, content_sha256, app_type, app_status, state, accepted_at
    FROM submission
    WHERE doc_type = $1 AND owner_code = $2 AND business_no = $3
      AND state <> 'dead' AND (outcome IS NULL OR outcome <> 'rejected')
    ORDER BY seq DESC
    LIMIT 1
), verdict AS (
    SELECT CASE
               WHEN l.seq IS NULL THEN 'new'
               WHEN l.content_sha256 = $4 AND (l.app_type = '3') = ($5::text = '3') THEN 'replay'
               WHEN $5::text = '1' AND l.state = 'done' AND l.app_type <> '3' AND l.app_status = '2'
                   THEN 'conflict'
               ELSE 'new'
           END AS verdict,
           l.seq,
           l.accepted_at
    FROM (VALUES (1)) AS one (x) LEFT JOIN latest AS l ON true
), raw AS (
    INSERT INTO raw_message (id, sha256, content_type, body, sender, received_at)
    SELECT $6, $7, $8, $9, $10, $11 FROM verdict WHERE verdict = 'new'
    RETURNING id
), appended AS (
    INSERT INTO submission (
        doc_type, owner_code, business_no, order_no, app_type, app_status, guid, content_sha256, payload,
        sender_code, actor, raw_message_id, item_index, accepted_at, state, attempts
    )
    SELECT $1, $2, $3, $12, $5, $13, $14, $4, $15, $16, $10, raw.id, $17, $11, 'pending', 0 FROM raw
    RETURNING seq
)
SELECT verdict.verdict, verdict.seq AS before_seq, verdict.accepted_at AS before_accepted_at,
       (SELECT seq FROM appended) AS seq
FROM verdict
"""


@dataclass(frozen=True)
class Outcome:
    verdict: str
    seq: int | None  # the new submission's, or the replayed one's
    accepted_at: datetime | None  # the replayed submission's


def _arguments(row: dict[str, Any], raw_row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["doc_type"],
        row["owner_code"],
        row["business_no"],
        row["content_sha256"],
        row["app_type"],
        raw_row["id"],
        raw_row["sha256"],
        raw_row["content_type"],
        raw_row["body"],
        raw_row["sender"],
        raw_row["received_at"],
        row["order_no"],
        row["app_status"],
        row["guid"],
        # SQLAlchemy's asyncpg dialect registers a jsonb codec that takes JSON text.
        json.dumps(row["payload"], ensure_ascii=False, separators=(",", ":")),
        row["sender_code"],
        row["item_index"],
    )


def unavailable(exc: BaseException) -> bool:
    """The database is not there for now, or this connection is unusable (retry on a fresh connection, then
    503), as opposed to a failed statement (a bug: it propagates). ``InternalClientError`` is asyncpg refusing a
    connection whose protocol is mid-operation — one the pool should never have handed out; nothing was sent."""
    if isinstance(
        exc,
        (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.exceptions.InternalClientError),
    ):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES


async def accept_one(engine: AsyncEngine, row: dict[str, Any], raw_row: dict[str, Any]) -> Outcome:
    """Run ``ACCEPT_ONE`` for one submission row and its raw message. Appending is idempotent (the same content
    again is a replay), so a connection lost on the way is retried once on a fresh connection.

    Shielded: a request cancelled while its statement runs must not return the connection to the pool with the
    statement still in progress; the statement finishes (or fails) and the connection goes back clean — the
    sender, who got no answer, sends again and gets the replay."""
    return await asyncio.shield(_accept_one(engine, _arguments(row, raw_row)))


async def _accept_one(engine: AsyncEngine, arguments: tuple[Any, ...]) -> Outcome:
    for attempt in (1, 2):
        async with engine.connect() as connection:
            proxied = await connection.get_raw_connection()
            driver: asyncpg.Connection = proxied.driver_connection
            try:
                record = await driver.fetchrow(ACCEPT_ONE, *arguments)
            except BaseException as exc:
                # Only a statement the server refused leaves the connection as it was. Cancelled mid-statement,
                # lost, or in a state asyncpg cannot vouch for, it must never go back to the pool: the next
                # user (the matcher, the dispatcher, another request) would find an operation in progress.
                if not (isinstance(exc, asyncpg.PostgresError) and not unavailable(exc)):
                    await connection.invalidate()
                if not isinstance(exc, Exception) or not unavailable(exc):
                    raise
                log.info("accept: connection lost (%s), attempt %d", type(exc).__name__, attempt)
                if attempt == 2:
                    raise ConnectionError("the database is not reachable") from exc  # 503, Retry-After
                continue
        assert record is not None
        return Outcome(record["verdict"], record["seq"] or record["before_seq"], record["before_accepted_at"])
    raise AssertionError("unreachable")
