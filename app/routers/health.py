"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.db import ping
from app.migrate import current_revision
from app.read_replica import ReadReplica
from app.services.backlog import stage_backlogs

router = APIRouter(tags=["Health"])


class Health(BaseModel):
    status: Literal["ok"]


class StageState(BaseModel):
    backlog: int = Field(
        description="Items waiting (match: accepted documents; dispatch: declarations to agencies; notify: "
        "webhook / AMQP deliveries to enterprises)"
    )
    oldestAgeSeconds: float = Field(description="Age of the oldest waiting item, 0 when none")
    dead: int = Field(description="Items that could not be processed (operations endpoints list and retry them)")


class ReplicaReadiness(BaseModel):
    state: Literal["ok", "lagging", "unreachable"] = Field(
        description="ok: reads go to the replica; lagging (further behind than maxLagSeconds) or unreachable: "
        "they go to the primary, or answer 503 when fallback is off"
    )
    lagSeconds: float | None = Field(description="How far behind the primary its data may be; null when unknown")
    maxLagSeconds: float
    fallback: bool = Field(description="Reads fall back to the primary (SW_READ_FALLBACK)")


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    database: Literal["ok", "unreachable"]
    migration: str | None
    expectedMigration: str | None
    stages: dict[str, StageState] = Field(default_factory=dict, description="Each stage's backlog")
    readReplica: ReplicaReadiness | None = Field(
        default=None,
        description="The read replica (SW_READ_DATABASE_URL), null when none is configured. It does not decide "
        "readiness: without it reads fall back to the primary (or answer 503), writes go on",
    )


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
    stages: dict[str, StageState] = {}
    if ready:
        async with request.app.state.sessionmaker() as session:
            stages = {
                s.stage: StageState(backlog=s.backlog, oldestAgeSeconds=round(s.oldest_age_s, 3), dead=s.dead)
                for s in await stage_backlogs(session)
            }
    replica: ReadReplica | None = request.app.state.read_replica
    replica_readiness = None
    if replica is not None:
        state = await replica.measure()
        replica_readiness = ReplicaReadiness(
            state=state.health,
            lagSeconds=None if state.lag_s is None else round(state.lag_s, 3),
            maxLagSeconds=replica.max_lag_s,
            fallback=replica.fallback,
        )
    body = Ready(
        status="ready" if ready else "not_ready",
        database=database,
        migration=current,
        expectedMigration=expected,
        stages=stages,
        readReplica=replica_readiness,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
