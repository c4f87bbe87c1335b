"""The application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from app.adapters.registry import build_adapters
from app.body_limit import BodySizeLimit
from app.config import Settings, get_settings
from app.console import dashboard as console_dashboard
from app.console import pages as console
from app.console import risk_views as console_risk
from app.db import create_engine, create_sessionmaker
from app.environment import check_environment
from app.errors import install_error_handlers
from app.matcher import Matcher
from app.migrate import head_revision
from app.mock_agencies.api import build_router as build_mock_router
from app.mock_agencies.runtime import MockAgencies
from app.notify.webhook import webhook_client
from app.notify.worker import DeliveryWorker
from app.observability import Metrics, RequestIdMiddleware
from app.read_replica import ReadReplica
from app.read_replica_retry import ReplicaConflictRetry
from app.routers import (
    api_docs,
    audit,
    callbacks,
    certificates,
    credit,
    documents,
    enterprises,
    feed,
    goods,
    health,
    inventory_requests,
    messages,
    metrics,
    operations,
    public,
    records,
    risk,
    stats,
    subscriptions,
)
from app.rules.rate_limits import route_class
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.schemas.problems import FieldError, Problem, problems
from app.services.declaration import enabled_agencies
from app.services.filing_cache import FilingCache
from app.services.partitions import is_postgres, keep_partitions
from app.services.rate_limits import build_rate_limiter
from app.services.risk_housekeeping import RiskHousekeeper
from app.services.waiting import Waiters
from app.shared_routes import add_routes
from app.worker import Dispatcher, agency_clients

log = logging.getLogger(__name__)
API_VERSION = "0.1.0"

DESCRIPTION = """
**Single Window** for cross-border e-commerce retail import (跨境电商零售进口): platforms post **orders**
(CEB311), payment firms **payments** (CEB411), carriers **waybills** (CEB511); each is acknowledged at once
(`returnStatus` `2`), then matched into one **three-document exchange record** (三单对碰), declared, and sent
to customs, inspection, tax and FX. `Prefer: wait=N` (N ≤ 30) holds the answer until the business result.

**Try it:** *Authorize* with an admin key (`make admin-key`, or `SW_ADMIN_TOKEN`); file the four example
enterprises with `POST /api/v1/enterprises` (one example per role) and the example goods record with
`POST /api/v1/goods`; issue each a key (`POST /api/v1/enterprises/{code}/keys`); post the order as the
platform, the payment as the payment firm, the waybill as the carrier (`Prefer: wait=5`). Then *Authorize*
with the admin or an official's key again to read the record (`GET /api/v1/records/{recordId}`): a party
sees only its own part of it.

[Reason codes](/reason-codes) (discrepancies and rejections, 中文 / English) ·
[officials' console](/console) (控制台) · [ReDoc](/redoc)
""".strip()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_replica = ReadReplica(settings, settings.read_database_url) if settings.read_database_url else None
    app.state.migration_head = head_revision(settings)
    # Agencies without a configured URL are the mock agencies mounted in this app, reached in-process.
    remote, embedded = agency_clients(settings, app if settings.mount_mock_agencies else None)
    app.state.adapters = build_adapters(enabled_agencies(settings), settings, remote, embedded)
    unreachable = [a for a in app.state.adapters if a not in settings.agency_urls and not settings.mount_mock_agencies]
    if unreachable:
        log.warning("agencies %s have no SW_AGENCY_URLS entry and the mock agencies are not mounted", unreachable)
    app.state.waiters = Waiters()
    app.state.rate_limiter = build_rate_limiter(settings.redis_url)
    app.state.matcher = None
    matcher_task: asyncio.Task[None] | None = None
    housekeeping_task: asyncio.Task[None] | None = None
    if settings.embedded_matcher:
        linger = settings.sqlite_match_linger_s if settings.is_sqlite else None
        app.state.matcher = Matcher(
            app.state.sessionmaker, settings, app.state.waiters, app.state.metrics, linger_s=linger
        )
        matcher_task = asyncio.create_task(app.state.matcher.run(), name="matcher")
        app.state.risk_housekeeper = RiskHousekeeper(app.state.sessionmaker, settings)
        housekeeping_task = asyncio.create_task(app.state.risk_housekeeper.run(), name="risk-housekeeping")
        app.state.risk_housekeeping_task = housekeeping_task
    app.state.dispatcher = None
    task: asyncio.Task[None] | None = None
    if settings.embedded_dispatcher:
        app.state.dispatcher = Dispatcher(
            engine, app.state.sessionmaker, settings, app.state.adapters, metrics=app.state.metrics
        )
        task = asyncio.create_task(app.state.dispatcher.run(), name="dispatcher")
    # The months ahead, by the process that runs the dispatcher (docs/storage.md); `sw worker` does the same.
    partitions_stop = asyncio.Event()
    partitions_task: asyncio.Task[None] | None = None
    if settings.embedded_dispatcher and is_postgres(engine):
        partitions_task = asyncio.create_task(
            keep_partitions(engine, settings.partitions_ahead, settings.partition_maintenance_s, partitions_stop),
            name="partitions",
        )
    app.state.delivery = None
    delivery_task: asyncio.Task[None] | None = None
    webhooks = webhook_client()
    if settings.embedded_delivery:
        app.state.delivery = DeliveryWorker(app.state.sessionmaker, settings, webhooks, app.state.waiters)
        delivery_task = asyncio.create_task(app.state.delivery.run(), name="delivery")
    try:
        yield
    finally:
        if delivery_task is not None:
            app.state.delivery.stop()
            # Deliveries in flight are cancelled; their leases expire and they are sent again (same webhook-id).
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(delivery_task, timeout=10)
        await webhooks.aclose()
        if housekeeping_task is not None:
            app.state.risk_housekeeper.stop()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(housekeeping_task, timeout=10)
        if matcher_task is not None:
            app.state.matcher.stop()
            # A round in progress finishes (one transaction) or is rolled back; its submissions stay pending.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(matcher_task, timeout=10)
        if partitions_task is not None:
            partitions_stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(partitions_task, timeout=10)
        if task is not None:
            app.state.dispatcher.stop()
            # A delivery hanging on a slow agency is cancelled after 10 s; its lease expires and the
            # dispatch is taken up again by the next dispatcher to run.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=10)
        await remote.aclose()
        await embedded.aclose()
        await app.state.rate_limiter.aclose()
        if app.state.read_replica is not None:
            await app.state.read_replica.dispose()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    check_environment(settings, "api")
    app = FastAPI(
        title="Single Window — cross-border e-commerce three-document exchange",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Our own /docs and /redoc (app/routers/api_docs.py) serve the shipped assets instead of a CDN's.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.filing_cache = FilingCache(settings.key_cache_s)
    install_error_handlers(app)
    # Innermost: a read the replica cancelled runs again whole, past the error handlers that would answer 500.
    app.add_middleware(ReplicaConflictRetry)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.mount(api_docs.STATIC_PREFIX, api_docs.static_files(), name="static")
    # Requests are matched against the routes in this order.
    before = (api_docs, health, metrics, enterprises, certificates, credit, risk, public, goods)
    after = (messages, records, inventory_requests, stats, operations, feed, subscriptions, callbacks, audit)
    for router in [m.router for m in before] + list(documents.routers) + [m.router for m in after]:
        add_routes(app, router)
    console.install(app, settings)
    add_routes(app, console_dashboard.router)
    add_routes(app, console_risk.router)
    if settings.mount_mock_agencies:
        # Their later answers (signed callbacks) come back to this same app, in-process.
        app.state.mock_agencies = MockAgencies(settings, httpx.ASGITransport(app=app))
        # Documented by their own app (`sw mock-agencies`), not as part of the single window's API.
        app.include_router(build_mock_router(app.state.mock_agencies), include_in_schema=False)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=None,
    )
    # Intake routes read their body themselves (exact decimals, per-item batch results), so the
    # document models are added to the components here for their $refs.
    _, definitions = models_json_schema(
        [(m, "validation") for m in (OrderIn, PaymentIn, WaybillIn, Problem, FieldError)],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(definitions.get("$defs", {}))
    _problem_for_validation_errors(schema)
    _malformed_url_for_parameters(schema)
    _rate_limited_for_enterprises(schema)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema


def _problem_for_validation_errors(schema: dict[str, Any]) -> None:
    """FastAPI declares its own 422 shape on routes with parameters; ours is problem+json everywhere."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            response = operation.get("responses", {}).get("422")
            if response is not None and "application/json" in response.get("content", {}):
                response["content"] = problem
                response["description"] = "Validation failed; `errors` lists each bad field by path"


def _rate_limited_for_enterprises(schema: dict[str, Any]) -> None:
    """Intake and reads with an API key count towards the enterprise's rate limit (app/deps.py): 429."""
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            if operation.get("security") and route_class(method.upper(), path) is not None:
                responses = operation["responses"]
                operation["responses"] = dict(sorted((responses | {"429": problems(429)[429]}).items()))


def _malformed_url_for_parameters(schema: dict[str, Any]) -> None:
    """Every URL is screened before routing (app/body_limit.py): where a route reads the path or query, a
    NUL or a repeated query parameter is a 400 ``MALFORMED_URL``."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation["responses"]
            if operation.get("parameters") and "400" not in responses:
                operation["responses"] = dict(sorted((responses | {"400": problems(400)[400]}).items()))
