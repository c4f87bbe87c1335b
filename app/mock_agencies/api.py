"""HTTP face of the mock agencies: ``POST /mock/{agency}/declarations``, ``POST /mock/{agency}/declarations/batch``
(up to 100 declarations, a result each), ``GET /mock/{agency}/stats`` and ``GET /mock/{agency}/answers``.

``create_mock_agencies_router(settings)`` mounts them under the main app (embedded mode);
``create_mock_agencies_app(settings)`` serves them alone (``sw mock-agencies --port P``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.adapters.base import MAX_BATCH_SIZE
from app.config import Settings, get_settings
from app.mock_agencies.runtime import PROBLEM_JSON, MockAgencies
from app.mock_agencies.store import AGENCIES

TAG = "Mock agencies"

_WHAT = {
    "customs": "checks the inventory (清单) → `120` `399` `800`, or `120` `500` and a signed `800` callback after "
    "an inspection; `100` with the reasons",
    "inspection": "goods off the positive list → `100`; `riskDecision.decision` `inspect` → `500`; else `120`",
    "tax": "recomputes the tax → `120` with a CEB816-like `taxBill`; over the single or annual limit → `100` "
    "(`-621005` / `-621018` in returnInfo)",
    "fx": "checks currency, amount and the payer's ID → `120` with a `settlement`; else `100`",
}

_PACKAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["recordId"],
    "description": "The declaration package (CEB field names; decimals as strings). Customs also needs callbackUrl.",
    "properties": {
        "dispatchId": {"type": "string"},
        "recordId": {"type": "string"},
        "agency": {"type": "string", "enum": list(AGENCIES)},
        "callbackUrl": {"type": "string", "format": "uri"},
        "inventory": {"type": "object", "description": "Every CEB621 InventoryHead field and `inventoryList`"},
        "tax": {"type": "object", "description": "customsTax, valueAddedTax, consumptionTax, taxTotal, lines"},
        "order": {"type": "object", "description": "CEB311 order with orderList"},
        "payment": {"type": "object", "description": "CEB411 payment"},
        "waybill": {"type": "object", "description": "CEB511 waybill"},
        "goods": {"type": "array", "items": {"type": "object"}, "description": "Filed goods with rates"},
        "seller": {"type": "object", "properties": {"code": {"type": "string"}, "creditLevel": {"type": "string"}}},
        "riskDecision": {
            "type": "object",
            "description": "The single window's decision: `decision` inspect | release, `reasons` (codes)",
            "properties": {"decision": {"type": "string"}, "reasons": {"type": "array", "items": {"type": "string"}}},
        },
    },
}


_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["declarations"],
    "properties": {
        "declarations": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_SIZE,
            "description": "Declaration packages; each one's dispatchId is its idempotency key",
            "items": {**_PACKAGE_SCHEMA, "required": ["dispatchId", "recordId"]},
        }
    },
}


class MockAgencyReceipt(BaseModel):
    returnStatus: str = Field(description="120 accepted, 399 concluded, 500 inspection, 800 released, 100 rejected")
    returnInfo: str
    returnTime: str = Field(description="YYYYMMDDhhmmssSSS, China time")
    invtNo: str | None = Field(default=None, description="Customs: the inventory number assigned on acceptance")


class MockAgencyAnswer(BaseModel):
    agency: str
    dispatchId: str
    receipts: list[MockAgencyReceipt]
    taxBill: dict[str, Any] | None = Field(default=None, description="Tax agency: {taxHeadRd, taxListRd}")
    settlement: dict[str, Any] | None = Field(default=None, description="FX agency")


class MockRequestAnswer(BaseModel):
    agency: str
    requestId: str = Field(description="The Idempotency-Key of the cancel or return")
    receipts: list[MockAgencyReceipt]


class MockAgencyBatchResult(BaseModel):
    status: int = Field(description="As an HTTP status of its own: 200 answered; 400 / 422 this declaration refused")
    dispatchId: str | None
    agency: str | None = None
    receipts: list[MockAgencyReceipt] | None = Field(default=None, description="When answered (status 200)")
    taxBill: dict[str, Any] | None = None
    settlement: dict[str, Any] | None = None
    code: str | None = Field(default=None, description="When refused: the problem's code, title and detail")
    title: str | None = None
    detail: str | None = None


class MockAgencyBatchAnswer(BaseModel):
    agency: str
    results: list[MockAgencyBatchResult] = Field(description="One per declaration sent, in the same order")


class MockAgencyStats(BaseModel):
    agency: str
    answered: int = Field(description="Distinct idempotency keys answered")
    requests: int = Field(description="Every call received, including failed and replayed ones")
    batchRequests: int = Field(description="Those of them to the batch route (one call, up to 100 declarations)")
    replays: int
    keyConflicts: int = Field(description="A known key with a different body (answered as the first time)")
    faults: dict[str, int]
    callbacks: dict[str, int]


class MockAgencyKeyAnswered(BaseModel):
    idempotencyKey: str
    recordId: str
    deliveries: int = Field(description="Calls answered with this key: 1, plus every replay (raw redeliveries)")


_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


# The answers of the fault injection, the same on every declaring route.
_INJECTED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Injected: busy, see Retry-After", **_PROBLEM},
    503: {"description": "Injected: unavailable", **_PROBLEM},
    504: {"description": "Injected: hung past the client's timeout", **_PROBLEM},
}


def _add_agency_routes(router: APIRouter, agencies: MockAgencies, agency: str) -> None:
    async def declare(
        request: Request, idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None
    ) -> JSONResponse:
        outcome = await agencies.declare(agency, idempotency_key, await request.body())
        return JSONResponse(
            outcome.body, status_code=outcome.status_code, headers=outcome.headers, media_type=outcome.media_type
        )

    async def declare_batch(request: Request) -> JSONResponse:
        outcome = await agencies.declare_batch(agency, await request.body())
        return JSONResponse(
            outcome.body, status_code=outcome.status_code, headers=outcome.headers, media_type=outcome.media_type
        )

    async def stats() -> MockAgencyStats:
        return MockAgencyStats.model_validate(agencies.stats(agency))

    async def answers() -> list[MockAgencyKeyAnswered]:
        return [MockAgencyKeyAnswered.model_validate(a) for a in agencies.answers(agency)]

    router.add_api_route(
        f"/mock/{agency}/declarations",
        declare,
        methods=["POST"],
        response_model=MockAgencyAnswer,
        summary=f"Mock {agency}: declare (same Idempotency-Key → same answer, counted once)",
        description=_WHAT[agency],
        operation_id=f"mock_{agency}_declare",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _PACKAGE_SCHEMA}}}},
        responses={
            400: {"description": "No Idempotency-Key", **_PROBLEM},
            422: {"description": "Not a declaration package (permanent)", **_PROBLEM},
            **_INJECTED,
        },
    )
    router.add_api_route(
        f"/mock/{agency}/declarations/batch",
        declare_batch,
        methods=["POST"],
        response_model=MockAgencyBatchAnswer,
        summary=f"Mock {agency}: declare up to {MAX_BATCH_SIZE} at once (a result each, deduped on its dispatchId)",
        description=_WHAT[agency] + ". Faults and latency apply to the whole call.",
        operation_id=f"mock_{agency}_declare_batch",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BATCH_SCHEMA}}}},
        responses={
            422: {"description": "Not a batch of 1..100 declarations (permanent)", **_PROBLEM},
            **_INJECTED,
        },
    )
    router.add_api_route(
        f"/mock/{agency}/stats",
        stats,
        methods=["GET"],
        response_model=MockAgencyStats,
        summary=f"Mock {agency}: keys answered and calls received",
        operation_id=f"mock_{agency}_stats",
    )
    router.add_api_route(
        f"/mock/{agency}/answers",
        answers,
        methods=["GET"],
        response_model=list[MockAgencyKeyAnswered],
        summary=f"Mock {agency}: every key answered, its record and how many calls it took (deduped vs raw)",
        operation_id=f"mock_{agency}_answers",
    )


_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["recordId", "message"],
    "description": "A cancel or return of a declared inventory: the signed CEB623 / CEB625 and its fields",
    "properties": {
        "requestId": {"type": "string"},
        "recordId": {"type": "string"},
        "kind": {"type": "string", "enum": ["cancel", "return"]},
        "message": {"type": "string", "description": "The signed CEB623Message / CEB625Message (XML text)"},
        "request": {"type": "object", "description": "The InvtCancel / InvtRefundHead fields (and invtRefundList)"},
    },
}


def _add_request_routes(router: APIRouter, agencies: MockAgencies) -> None:
    for kind, path, what in (
        ("cancel", "cancels", "a cancel (撤销, CEB623) → CEB624-like receipts"),
        ("return", "refunds", "a return (退货, CEB625) → CEB626-like receipts"),
    ):

        async def submit(
            request: Request,
            idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
            kind: str = kind,
        ) -> JSONResponse:
            outcome = await agencies.request(kind, idempotency_key, await request.body())
            return JSONResponse(
                outcome.body, status_code=outcome.status_code, headers=outcome.headers, media_type=outcome.media_type
            )

        router.add_api_route(
            f"/mock/customs/{path}",
            submit,
            methods=["POST"],
            response_model=MockRequestAnswer,
            summary=f"Mock customs: {what} (same Idempotency-Key → same answer)",
            description="Decided on what customs remembers of the inventory: `120` `399` approved; `100` with the "
            "spec's -623xxx / -625xxx code (not declared to it, already cancelled or returned, not released, "
            "more than 30 days after release, a line or quantity it did not declare, a signature that fails).",
            operation_id=f"mock_customs_{kind}",
            openapi_extra={
                "requestBody": {"required": True, "content": {"application/json": {"schema": _REQUEST_SCHEMA}}}
            },
            responses={
                400: {"description": "No Idempotency-Key", **_PROBLEM},
                422: {"description": "Not a request (permanent)", **_PROBLEM},
                **_INJECTED,
            },
        )


def build_router(agencies: MockAgencies) -> APIRouter:
    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await agencies.aclose()

    router = APIRouter(tags=[TAG], lifespan=lifespan)
    for agency in AGENCIES:
        _add_agency_routes(router, agencies, agency)
    _add_request_routes(router, agencies)
    return router


def create_mock_agencies_router(
    settings: Settings, callback_transport: httpx.AsyncBaseTransport | None = None
) -> APIRouter:
    """The four mock agencies, to include in the main app (embedded mode)."""
    return build_router(MockAgencies(settings, callback_transport))


def create_mock_agencies_app(
    settings: Settings | None = None, callback_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The four mock agencies as a standalone app; ``app.state.mock_agencies`` is their runtime."""
    settings = settings or get_settings()
    agencies = MockAgencies(settings, callback_transport)
    app = FastAPI(
        title="Single Window — mock agencies (customs, inspection, tax, FX)",
        version="0.1.0",
        description="Agencies that behave like the real ones, with fault injection (SW_MOCK_* settings).",
    )
    app.state.mock_agencies = agencies
    app.include_router(build_router(agencies))
    return app
