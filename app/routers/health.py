"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.db import ping
from app.migrate import current_revision

router = APIRouter(tags=["Health"])


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    database: Literal["ok", "unreachable"]
    migration: str | None
    expectedMigration: str | None


@router.get("/healthz", response_model=Health, summary="The process is alive", operation_id="healthz")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="The database is reachable and its schema is at the migration head",
    responses={503: {"model": Ready, "description": "Not ready"}},
    operation_id="readyz",
)
async def readyz(request: Request) -> JSONResponse:
    engine = request.app.state.engine
    expected = request.app.state.migration_head
    try:
        await ping(engine)
        current = await current_revision(engine)
        database: Literal["ok", "unreachable"] = "ok"
    except Exception:
        current, database = None, "unreachable"
    ready = database == "ok" and current == expected
    body = Ready(
        status="ready" if ready else "not_ready",
        database=database,
        migration=current,
        expectedMigration=expected,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
