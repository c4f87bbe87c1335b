"""The bare baseline the service is measured against, in the same run, on the same database and server settings.

    uvicorn bench.baseline_app:create_app --factory --workers 2   (BENCH_DATABASE_URL=postgresql+asyncpg://…)

The same routes as the intake (``POST /api/v1/{orders,payments,waybills}`` and ``…/batch``) so the load generator
sends it the very same requests; each request is a pydantic validation of the document(s) and one ``INSERT``
through SQLAlchemy async (asyncpg, or aiosqlite for the embedded comparison), committed before the answer:

* single: validate one document, insert it (one row, one transaction);
* batch: validate 1..100 documents, insert them with one multi-row ``INSERT`` in one transaction.

No authentication, no idempotency, no matching: the floor under what any durable intake costs on this machine.
Its table ``bench_baseline_document`` is created by the harness (:func:`create_table`), never by migrations.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Uuid, event, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

Amount = Annotated[Decimal, Field(max_digits=19, decimal_places=5, ge=0)]
Code = Annotated[str, Field(min_length=1, max_length=18)]
Text60 = Annotated[str, Field(min_length=1, max_length=60)]
Text100 = Annotated[str, Field(min_length=1, max_length=100)]
Text250 = Annotated[str, Field(min_length=1, max_length=250)]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guid: str | None = Field(default=None, max_length=36)
    appType: Literal["1", "2", "3"] = "1"
    appTime: str | None = Field(default=None, pattern=r"^\d{14}$")
    appStatus: Literal["1", "2"] = "2"


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gnum: int = Field(ge=1, le=9999)
    itemNo: str | None = Field(default=None, max_length=30)
    itemName: Text250
    gmodel: Annotated[str, Field(max_length=510)]
    barCode: str | None = Field(default=None, max_length=50)
    unit: str = Field(pattern=r"^\w{3}$")
    qty: Amount
    price: Amount
    totalPrice: Amount
    currency: str = Field(pattern=r"^\d{3}$")
    country: str = Field(pattern=r"^\w{3}$")


class Order(_Document):
    orderType: Literal["I"]
    orderNo: Text60
    ebpCode: Code
    ebpName: Text100
    ebcCode: Code
    ebcName: Text100
    goodsValue: Amount
    freight: Amount
    discount: Amount
    taxTotal: Amount
    acturalPaid: Amount
    currency: str = Field(pattern=r"^\d{3}$")
    buyerRegNo: Text60
    buyerName: Text60
    buyerTelephone: str = Field(max_length=30)
    buyerIdType: Literal["1"]
    buyerIdNumber: Text60
    payCode: Code | None = None
    payName: Text100 | None = None
    payTransactionId: Text60 | None = None
    consignee: Text100
    consigneeTelephone: str = Field(max_length=50)
    consigneeAddress: str = Field(max_length=200)
    consigneeDistrict: str | None = Field(default=None, pattern=r"^\d{6}$")
    orderList: list[OrderLine] = Field(min_length=1, max_length=99)


class Payment(_Document):
    payCode: Code
    payName: Text100
    payTransactionId: Text60
    orderNo: Text60
    ebpCode: Code
    ebpName: Text100
    payerIdType: Literal["1"]
    payerIdNumber: Text60
    payerName: Text60
    telephone: str | None = Field(default=None, max_length=60)
    amountPaid: Amount
    currency: str = Field(pattern=r"^\d{3}$")
    payTime: str = Field(pattern=r"^\d{14}$")


class Waybill(_Document):
    logisticsCode: Code
    logisticsName: Text100
    logisticsNo: Text60
    billNo: str | None = Field(default=None, max_length=37)
    orderNo: Text60
    freight: Amount | None = None
    insuredFee: Amount | None = None
    currency: str = Field(pattern=r"^\d{3}$")
    weight: Amount
    packNo: Literal[1]
    goodsInfo: str | None = Field(default=None, max_length=200)
    consignee: Text100
    consigneeAddress: str = Field(max_length=200)
    consigneeTelephone: str = Field(max_length=50)
    ebpCode: Code | None = None


MODELS: dict[str, tuple[str, type[_Document], str]] = {
    # path: (document type, model, business-number field)
    "orders": ("order", Order, "orderNo"),
    "payments": ("payment", Payment, "payTransactionId"),
    "waybills": ("waybill", Waybill, "logisticsNo"),
}

metadata = MetaData()
documents = Table(
    "bench_baseline_document",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("doc_type", String(8), nullable=False),
    Column("business_no", String(60), nullable=False),
    Column("payload", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


def engine_for(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The same journal and durability settings as the service's SQLite engine (app/db.py).
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        pool_size=int(os.environ.get("SW_DB_POOL_SIZE", "10")),
        max_overflow=int(os.environ.get("SW_DB_MAX_OVERFLOW", "10")),
    )


async def create_table(url: str) -> None:
    engine = engine_for(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


def _row(doc_type: str, number_field: str, document: _Document, now: datetime) -> dict[str, Any]:
    payload = document.model_dump(mode="json", exclude_none=True)
    return {
        "id": uuid.uuid4(),
        "doc_type": doc_type,
        "business_no": payload[number_field],
        "payload": payload,
        "received_at": now,
    }


def _problem(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"status": status, "detail": detail}, status_code=status, media_type="application/problem+json")


def create_app() -> FastAPI:
    url = os.environ["BENCH_DATABASE_URL"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine_for(url)
        try:
            yield
        finally:
            await app.state.engine.dispose()

    app = FastAPI(title="bench baseline", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/{path}", status_code=201)
    async def single(path: Literal["orders", "payments", "waybills"], request: Request) -> JSONResponse:
        doc_type, model, number_field = MODELS[path]
        try:
            document = model.model_validate_json(await request.body())
        except ValidationError as exc:
            return _problem(422, exc.errors(include_url=False, include_input=False))
        row = _row(doc_type, number_field, document, datetime.now(UTC))
        async with request.app.state.engine.begin() as conn:
            await conn.execute(insert(documents), row)
        return JSONResponse({"id": str(row["id"]), "documentType": doc_type}, status_code=201)

    @app.post("/api/v1/{path}/batch")
    async def batch(path: Literal["orders", "payments", "waybills"], request: Request) -> JSONResponse:
        doc_type, model, number_field = MODELS[path]
        try:
            items = BatchIn.model_validate_json(await request.body()).items
            validated = [model.model_validate(item) for item in items]
        except ValidationError as exc:
            return _problem(422, exc.errors(include_url=False, include_input=False))
        now = datetime.now(UTC)
        rows = [_row(doc_type, number_field, document, now) for document in validated]
        async with request.app.state.engine.begin() as conn:
            await conn.execute(insert(documents).values(rows))  # one multi-row INSERT
        return JSONResponse(
            {
                "items": [{"index": i, "status": 201, "id": str(r["id"])} for i, r in enumerate(rows)],
                "summary": {"stored": len(rows), "replayed": 0, "rejected": 0},
            }
        )

    return app


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=100)
