"""Metrics (Prometheus text format at /metrics) and structured JSON logs with a request id and record id."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ceb.conformance import invalid_counts
from app.db import utcnow
from app.models import Dispatch, MatchRecord
from app.read_replica import ReadSource
from app.services.backlog import stage_backlogs

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
record_id_var: ContextVar[str | None] = ContextVar("record_id", default=None)


class OutgoingInvalidCollector(Collector):
    """``sw_outgoing_invalid_total{message=…}``: messages we produced that broke our XSD and were not sent
    (``app/ceb/conformance.py`` counts them wherever they happen in the process). Any rise is a bug: alert."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "sw_outgoing_invalid",
            "Messages this service produced that broke its XSD and were not sent, by root element",
            labels=["message"],
        )
        for message, count in invalid_counts().items():
            family.add_metric([message], count)
        yield family


class Metrics:
    """One registry per app (tests build many apps); counters are per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(OutgoingInvalidCollector())
        self.documents = Counter(
            "sw_documents_received",
            "Documents received, by type and outcome (accepted, replayed, rejected)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.dispatch_attempts = Counter(
            "sw_dispatch_attempts",
            "Agency dispatch attempts, by agency and outcome (delivered, retry, dead, lost_lease)",
            ["agency", "outcome"],
            registry=self.registry,
        )
        self.dispatch_latency = Histogram(
            "sw_dispatch_latency_seconds",
            "Time of one agency call, by agency and outcome",
            ["agency", "outcome"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.matched_submissions = Counter(
            "sw_match_processed", "Accepted documents the match stage processed", registry=self.registry
        )
        self.dead_submissions = Counter(
            "sw_match_dead", "Accepted documents the match stage could not process (now dead)", registry=self.registry
        )
        self.stage_backlog = Gauge(
            "sw_stage_backlog", "Items waiting in each stage (match, dispatch)", ["stage"], registry=self.registry
        )
        self.stage_oldest_age = Gauge(
            "sw_stage_oldest_age_seconds",
            "Age of the oldest item waiting in each stage (0 when none)",
            ["stage"],
            registry=self.registry,
        )
        self.stage_dead = Gauge(
            "sw_stage_dead", "Items of each stage in the dead state", ["stage"], registry=self.registry
        )
        self.records = Gauge("sw_records", "Match records by status", ["status"], registry=self.registry)
        self.outbox_depth = Gauge(
            "sw_outbox_depth", "Dispatches not yet delivered or dead, by status", ["status"], registry=self.registry
        )
        self.outbox_oldest_age = Gauge(
            "sw_outbox_oldest_pending_age_seconds",
            "Age of the oldest dispatch waiting to be sent (0 when none)",
            registry=self.registry,
        )

        self.replica_up = Gauge(
            "sw_read_replica_up",
            "The read replica answered its last lag check (1), or not (0); absent without SW_READ_DATABASE_URL",
            registry=self.registry,
        )
        self.replica_lag = Gauge(
            "sw_read_replica_lag_seconds",
            "How far behind the primary the read replica's data may be (NaN: unknown)",
            registry=self.registry,
        )
        self.reads = Counter(
            "sw_routed_reads",
            "Reads meant for the replica, by the database that answered them (replica, or primary with the reason: "
            "none configured, lagging, unreachable, conflict: the replica cancelled the read)",
            ["source", "reason"],
            registry=self.registry,
        )

    def replica_state(self, up: bool, lag_s: float | None) -> None:
        self.replica_up.set(1 if up else 0)
        self.replica_lag.set(float("nan") if lag_s is None else lag_s)

    async def refresh(self, session: AsyncSession) -> None:
        """The gauges read from the database at scrape time (every process sees the same numbers)."""
        for status, count in (
            await session.execute(select(MatchRecord.status, func.count()).group_by(MatchRecord.status))
        ).all():
            self.records.labels(status=status).set(count)
        waiting = ("pending", "retry", "in_flight")
        counts = dict(
            (
                await session.execute(
                    select(Dispatch.status, func.count()).where(Dispatch.status.in_(waiting)).group_by(Dispatch.status)
                )
            ).all()
        )
        for status in waiting:
            self.outbox_depth.labels(status=status).set(counts.get(status, 0))
        oldest = await session.scalar(select(func.min(Dispatch.created_at)).where(Dispatch.status.in_(waiting)))
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        self.outbox_oldest_age.set((utcnow() - oldest).total_seconds() if oldest is not None else 0)
        for stage in await stage_backlogs(session):
            self.stage_backlog.labels(stage=stage.stage).set(stage.backlog)
            self.stage_oldest_age.labels(stage=stage.stage).set(stage.oldest_age_s)
            self.stage_dead.labels(stage=stage.stage).set(stage.dead)


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the caller (or makes one), puts it on every log line and the response; on the
    answer of a read routed to the replica or the primary (``request.state.read_source``, app/deps.py), also
    ``X-Read-Source`` and ``X-Read-Lag`` — streamed answers too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given if given.isprintable() and given else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                source = scope.get("state", {}).get("read_source")
                if isinstance(source, ReadSource):
                    headers.extend(source.headers())
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["requestId"] = request_id
        if (record_id := record_id_var.get()) is not None:
            entry["recordId"] = record_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO: one line per agency call is the dispatcher's own log's job (with the
    # dispatch and record ids), and formatting it cost the worker measurable CPU under load.
    logging.getLogger("httpx").setLevel(logging.WARNING)
