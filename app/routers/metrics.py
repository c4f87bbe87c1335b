"""Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import SessionDep
from app.observability import Metrics
from app.read_replica import ReadReplica

router = APIRouter(tags=["Health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: documents, records by status, dispatch attempts and latency, outbox depth and age",
    description="Counters are per process (documents received, dispatch attempts and latency); the gauges "
    "(records by status, outbox depth, age of the oldest waiting dispatch) are read from the database.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics"}},
    operation_id="metrics",
)
async def metrics(request: Request, session: SessionDep) -> Response:
    registry: Metrics = request.app.state.metrics
    await registry.refresh(session)
    replica: ReadReplica | None = request.app.state.read_replica
    if replica is not None:
        state = await replica.measure()
        registry.replica_state(state.health != "unreachable", state.lag_s)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
