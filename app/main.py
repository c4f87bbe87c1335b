"""The application factory: ``create_app(settings)``; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from app.body_limit import BodySizeLimit
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.migrate import head_revision
from app.reason_docs import discrepancy_table, error_table
from app.routers import documents, enterprises, health, messages, records
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.schemas.problems import FieldError, Problem

API_VERSION = "0.1.0"

DESCRIPTION = """
**Single Window** for cross-border e-commerce retail import (跨境电商零售进口).

Platforms post **orders** (订单, CEB311), payment firms **payments** (支付单, CEB411), logistics firms
**waybills** (运单, CEB511). Each is stored durably and idempotently and matched, in the same transaction,
with the other documents of its purchase into one **three-document exchange record** (三单对碰).

**Try it in this page:**
1. *Authorize* with an admin key (`sw admin-key`, or `SW_ADMIN_TOKEN`).
2. `POST /api/v1/enterprises` four times: a platform, a seller, a payment firm and a carrier
   (codes `3120960A01`, `3120960A02`, `3120960P01`, `3120960L01` fit the examples).
3. `POST /api/v1/enterprises/{code}/keys` for each; *Authorize* with the platform's key and post the order
   example, then with the payment firm's key the payment, then with the carrier's key the waybill.
4. `GET /api/v1/records?orderNo=GW20261123000101` shows the `MATCHED` record. Post the *mismatched* examples
   the same way and read exactly why that record did not match.

### Discrepancy reason codes
""".strip()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.migration_head = head_revision(settings)
    try:
        yield
    finally:
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Single Window — cross-border e-commerce three-document exchange",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(enterprises.router)
    for router in documents.routers:
        app.include_router(router)
    app.include_router(messages.router)
    app.include_router(records.router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=f"{app.description}\n\n{discrepancy_table()}\n\n### Rejection codes\n\n{error_table()}",
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
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema


def _problem_for_validation_errors(schema: dict[str, Any]) -> None:
    """FastAPI declares its own 422 shape on routes with parameters; ours is problem+json everywhere."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is not None and "application/json" in response.get("content", {}):
                response["content"] = problem
                response["description"] = "Validation failed; `errors` lists each bad field by path"
