"""Request dependencies, as ``Annotated`` aliases routers can declare."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import session_scope, utcnow
from app.errors import RateLimited
from app.read_replica import ReadReplica, ReadSource, primary_source
from app.read_replica_retry import REPLICA_CONFLICT
from app.rules.rate_limits import route_class
from app.services.auth import BOOTSTRAP_KEY_ID, Principal, authenticate, record_key_use
from app.services.filing_cache import FilingCache
from app.services.rate_limits import RateLimiter, refusal
from app.services.waiting import MAX_WAIT_S

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An admin, official or enterprise key. Admin: `sw admin-key` or SW_ADMIN_TOKEN. "
    "Enterprise: POST /api/v1/enterprises/{code}/keys. Official: POST /api/v1/officials.",
)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return maker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # When the handler fails, FastAPI throws into this generator; ``aclosing`` passes that on to the unit of
    # work, which a bare ``async for`` would leave suspended, its connection checked out and its transaction
    # (on SQLite the write lock) open, until garbage collection.
    async with aclosing(session_scope(get_sessionmaker(request))) as unit_of_work:
        async for session in unit_of_work:
            yield session


async def read_source(request: Request) -> ReadSource:
    """The database this request's reads go to (app/read_replica.py), noted for the answer's headers."""
    replica: ReadReplica | None = request.app.state.read_replica
    primary = get_sessionmaker(request)
    if replica is None:
        source = primary_source(primary)
    elif getattr(request.state, REPLICA_CONFLICT, False):
        source = replica.after_conflict(primary)
    else:
        source = await replica.choose(primary)
    request.state.read_source = source
    reason = "replica" if source.name == "replica" else source.fallback or "none configured"
    request.app.state.metrics.reads.labels(source=source.name, reason=reason).inc()
    return source


async def get_read_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads that may be stale by the lag the answer reports (statistics, the feed, exports)."""
    return (await read_source(request)).sessionmaker


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One read transaction on the replica (or the primary when the replica is behind or away)."""
    source = await read_source(request)
    async with aclosing(session_scope(source.sessionmaker)) as unit_of_work:
        async for session in unit_of_work:
            yield session


async def get_principal(request: Request, key: Annotated[str | None, Depends(api_key_header)]) -> Principal:
    cache: FilingCache = request.app.state.filing_cache
    principal = (cache.principal(key) if key else None) or await _read_principal(request, key)
    await _within_rate_limit(request, principal)
    if principal.key_id != BOOTSTRAP_KEY_ID and cache.key_use_due(principal.key_id):
        # Once a minute per key and process: a short transaction of its own, never one per request.
        async with get_sessionmaker(request)() as session, session.begin():
            await record_key_use(session, uuid.UUID(principal.key_id), utcnow())
    return principal


async def _within_rate_limit(request: Request, principal: Principal) -> None:
    """Before the route runs, so a refused request leaves nothing behind. Enterprises only: admins and
    officials are people, not a sender's loop."""
    route = route_class(request.method, request.url.path)
    if getattr(request.state, REPLICA_CONFLICT, False):
        return  # the second attempt of a read the replica cancelled (app/read_replica_retry.py): counted once
    if route is None or principal.kind != "enterprise" or principal.enterprise_code is None:
        return
    settings = get_settings_dep(request)
    own = principal.rate_limits.get(route)
    limit = (
        own if own is not None else (settings.rate_limit_intake if route == "intake" else settings.rate_limit_queries)
    )
    limiter: RateLimiter = request.app.state.rate_limiter
    bucket = f"{route}:{principal.enterprise_code}"
    window_s = settings.rate_limit_window_s
    verdict = await refusal(limiter, bucket, limit, window_s, hold_s=settings.rate_limit_refusal_delay_s)
    if verdict is not None:
        raise RateLimited(
            f"More than {limit} {route} requests from {principal.enterprise_code} in {window_s} s; "
            f"retry after {verdict.retry_after_s} s",
            retry_after_s=verdict.retry_after_s,
        )


async def _read_principal(request: Request, key: str | None) -> Principal:
    settings = get_settings_dep(request)
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as conn:
        if not settings.is_sqlite:
            # One read, no transaction: BEGIN and ROLLBACK around it would be two more round trips per request.
            # (Not on SQLite, where the engine controls transactions itself: app.db._create_sqlite_engine.)
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await authenticate(conn, key, settings.admin_token, request.app.state.filing_cache)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
# scope="function": the transaction commits when the handler returns, before the response is sent — a 2xx
# means committed (with the default "request" scope FastAPI would commit after sending the answer).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
# Reads that need not see the caller's own last write: answered from the replica when one is configured and
# close enough behind (the answer says which, and how stale: X-Read-Source, X-Read-Lag).
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
ReadSessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_read_sessionmaker)]


PreferHeader = Annotated[
    str | None,
    Header(
        alias="Prefer",
        description=f"`wait=N` (RFC 7240, N ≤ {MAX_WAIT_S}): hold the answer until the business result is known "
        "(or N seconds pass) and answer with it; without it the answer is the acceptance (returnStatus 2)",
        examples=["wait=5"],
    ),
]


def applied(wait: int | None) -> dict[str, str]:
    """``Preference-Applied`` for an honoured ``Prefer: wait``."""
    return {"Preference-Applied": f"wait={wait}"} if wait else {}


def forget_keys_on_commit(request: Request, session: AsyncSession) -> None:
    """This request changes what a key may do: the key cache of this process is cleared now and again when
    the change commits (so that no request in between keeps the old state); other processes follow within
    ``SW_KEY_CACHE_S``."""
    cache = request.app.state.filing_cache
    cache.clear()
    event.listen(session.sync_session, "after_commit", lambda _: cache.clear(), once=True)


async def get_search_sessionmaker(request: Request, principal: PrincipalDep) -> async_sessionmaker[AsyncSession]:
    """Record searches and exports: an official's or admin's on the replica; an enterprise's on the primary,
    where the record of a document it has just sent is already there to be found."""
    if principal.reads_everything:
        return await get_read_sessionmaker(request)
    request.state.read_source = primary_source(get_sessionmaker(request))
    return get_sessionmaker(request)


SearchSessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_search_sessionmaker)]
