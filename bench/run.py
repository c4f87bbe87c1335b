"""The benchmark harness: ``make bench`` (full, minutes) and ``make bench-quick`` (the same shape, small).

    python -m bench.run [--quick] [--keep-db]

It starts everything it measures on a fresh PostgreSQL database of its own (``sw_bench_<pid>``, dropped at the
end): the mock agencies (20 ms latency), the service (uvicorn, 2 worker processes, embedded dispatcher off), the
standalone dispatcher(s), the bare baseline app (bench/baseline_app.py, same server settings, same database) and,
for every measurement, a load generator in a process of its own (bench/loadgen.py). Then, on each point of the
scale curve (purchases already stored, seeded by bench/seed.py):

1. single-document POSTs (JSON), baseline then service, closed loop, N connections;
2. batches of 100 (JSON), baseline then service; the service again with CEB XML messages of 100 records;
3. (first point only) the dispatcher draining the outbox those left, with 1 then 2 workers, and the
   matched → CLEARED latency under a paced single-document load with one dispatcher running;

and at the end the embedded single-process mode on a SQLite file (single documents, against the baseline on
SQLite). Ingest is measured with no dispatcher running, so that the service and the baseline have the same
machine to themselves. After every run the database is checked: every document acknowledged with a 2xx is
stored; any 5xx, 4xx, transport error or lost document fails the harness (after cleaning up). Targets are
printed beside the figures, never asserted. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from bench import seed as seeding
from bench import workload
from bench.loadgen import latency_summary
from bench.procs import Child, Children, free_port, wait_http, wait_until

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
PY = sys.executable

TARGET_SINGLE_RATIO = 0.7
TARGET_BATCH_DOCS = 3000.0
TARGET_BATCH_RATIO = 0.6
TARGET_P99_MS = 2000.0
TARGET_SCALE_RATIO = 0.9


@dataclass(frozen=True)
class Config:
    mode: str
    scale_points: tuple[int, ...]
    warmup_s: float
    duration_s: float
    single_concurrency: int = 32
    batch_concurrency: int = 8
    templates: int = 40
    dispatch_window_s: float = 10.0
    dispatch_min_backlog: int = 4000  # dispatches pending before a dispatcher measurement starts
    latency_duration_s: float = 10.0
    baselines_at_every_point: bool = True
    sqlite: bool = True
    drain_timeout_s: float = 600.0
    max_purchases_built: int = 60_000  # per load-generator run (bodies are built before the clock starts)


QUICK = Config(
    mode="quick",
    scale_points=(10_000, 15_000),
    warmup_s=1.0,
    duration_s=4.0,
    templates=16,
    dispatch_window_s=3.0,
    dispatch_min_backlog=600,
    latency_duration_s=4.0,
    baselines_at_every_point=False,
    drain_timeout_s=120.0,
    max_purchases_built=8_000,
)
FULL = Config(
    mode="full",
    scale_points=(10_000, 100_000, 1_000_000),
    warmup_s=2.0,
    duration_s=12.0,
    dispatch_window_s=10.0,
    dispatch_min_backlog=4000,
    latency_duration_s=15.0,
)


class BenchFailure(Exception):
    """A run produced errors or lost documents: the figures are not to be trusted."""


_T0 = time.monotonic()


def log(message: str) -> None:
    """A progress line, with the seconds since the harness started."""
    print(f"[{time.monotonic() - _T0:5.0f} s] {message}" if message else "", flush=True)


# --- the database -----------------------------------------------------------------------------------------


def admin_url() -> str:
    return os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str, driver: str = "postgresql") -> str:
    admin = urlsplit(admin_url())
    return urlunsplit((driver, admin.netloc, f"/{name}", "", ""))


async def admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(admin_url())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Db:
    """The harness's own connection to the bench database: counts, outbox state, latencies."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def scalar(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)

    async def documents(self) -> int:
        return int(await self.scalar("SELECT count(*) FROM document"))

    async def baseline_rows(self) -> int:
        return int(await self.scalar("SELECT count(*) FROM bench_baseline_document"))

    async def outbox(self) -> dict[str, int]:
        rows = await self.conn.fetch("SELECT status, count(*) AS n FROM dispatch GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    async def backlog(self) -> int:
        """Dispatches due now or in flight (parked ones, due in ten years, do not count)."""
        return int(
            await self.scalar(
                "SELECT count(*) FROM dispatch WHERE status = 'in_flight' "
                "OR (status IN ('pending', 'retry') AND next_attempt_at <= now() + interval '1 day')"
            )
        )

    async def in_flight(self) -> int:
        return int(await self.scalar("SELECT count(*) FROM dispatch WHERE status = 'in_flight'"))

    async def park_outbox(self) -> int:
        """Postpone every waiting dispatch by ten years: the outbox is empty for what follows (bench data only)."""
        status = await self.conn.execute(
            "UPDATE dispatch SET next_attempt_at = now() + interval '10 years' WHERE status IN ('pending', 'retry')"
        )
        return int(status.rsplit(" ", 1)[-1])

    async def now(self) -> datetime:
        value: datetime = await self.scalar("SELECT clock_timestamp()")
        return value

    async def record_statuses(self, prefix: str) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT status, count(*) AS n FROM match_record WHERE order_no LIKE $1 GROUP BY status", f"{prefix}%"
        )
        return {r["status"]: int(r["n"]) for r in rows}

    async def match_to_cleared_ms(self, prefix: str) -> tuple[list[float], int]:
        """Per record matched in this stream: CLEARED event time − matched_at (ms); and how many never cleared."""
        rows = await self.conn.fetch(
            "SELECT extract(epoch FROM (c.at - r.matched_at)) * 1000 AS ms FROM match_record r "
            "LEFT JOIN LATERAL (SELECT min(e.at) AS at FROM record_event e WHERE e.record_id = r.id "
            "AND e.kind = 'status_changed' AND e.detail->>'to' = 'CLEARED') c ON true "
            "WHERE r.order_no LIKE $1 AND r.matched_at IS NOT NULL",
            f"{prefix}%",
        )
        values = [float(r["ms"]) for r in rows if r["ms"] is not None]
        return values, sum(1 for r in rows if r["ms"] is None)


# --- the harness ------------------------------------------------------------------------------------------


class Harness:
    def __init__(self, config: Config, children: Children, db_name: str, work: Path) -> None:
        self.config = config
        self.children = children
        self.db_name = db_name
        self.work = work
        self.pg_url = database_url(db_name)
        self.sa_url = database_url(db_name, "postgresql+asyncpg")
        self.admin_token = "bench-" + secrets.token_urlsafe(24)
        self.ports = {name: free_port() for name in ("service", "baseline", "mock", "sqlite", "sqlite_baseline")}
        self.keys: dict[str, str] = {}
        self.db: Db
        self.dispatchers: list[Child] = []
        self.results: dict[str, Any] = {"scale": [], "checks": []}
        self.loadgen_count = 0

    # -- environment and processes --

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SW_", "BENCH_"))}
        return env | {
            "PYTHONUNBUFFERED": "1",
            "SW_ADMIN_TOKEN": self.admin_token,
            "SW_DB_POOL_SIZE": "10",
            "SW_DB_MAX_OVERFLOW": "0",
            "SW_MOCK_LATENCY_MS": "20",
            # Inspection sampling holds a declaration for a simulated inspection (a person, 1.5 s by default)
            # before customs releases it; the latency figure is about the pipeline, so nothing is sampled.
            "SW_MOCK_INSPECTION_RATE_ADVANCED": "0",
            "SW_MOCK_INSPECTION_RATE_GENERAL": "0",
            "SW_MOCK_INSPECTION_RATE_LOW": "0",
            "SW_MOCK_SEED": "0",
        }

    def service_env(self) -> dict[str, str]:
        mock = f"http://127.0.0.1:{self.ports['mock']}/mock"
        urls = {agency: f"{mock}/{agency}" for agency in ("customs", "inspection", "tax", "fx")}
        return self.base_env() | {
            "SW_DATABASE_URL": self.sa_url,
            "SW_EMBEDDED_DISPATCHER": "false",
            "SW_MOUNT_MOCK_AGENCIES": "false",
            "SW_AGENCY_URLS": json.dumps(urls),
            "SW_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports['service']}",
        }

    @staticmethod
    def uvicorn(app: str, port: int, workers: int) -> list[str]:
        return [
            PY, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    async def start_servers(self, migrating: asyncio.Future[None]) -> None:
        """Start the three servers while the database is being migrated (their imports take seconds), then wait
        for the migration and for each to answer."""
        env = self.service_env()
        mock = self.children.start(
            "mock-agencies", self.uvicorn("app.mock_agencies:create_mock_agencies_app", self.ports["mock"], 1), env
        )
        service = self.children.start("service", self.uvicorn("app.main:create_app", self.ports["service"], 2), env)
        baseline_env = env | {"BENCH_DATABASE_URL": self.sa_url}
        baseline = self.children.start(
            "baseline", self.uvicorn("bench.baseline_app:create_app", self.ports["baseline"], 2), baseline_env
        )
        await migrating
        await wait_http(f"http://127.0.0.1:{self.ports['mock']}/mock/customs/stats", mock, 60)
        await wait_http(f"http://127.0.0.1:{self.ports['service']}/readyz", service, 90, consecutive=10)
        await wait_http(f"http://127.0.0.1:{self.ports['baseline']}/healthz", baseline, 60, consecutive=10)

    async def start_dispatchers(self, count: int) -> None:
        env = self.service_env()
        for _ in range(count):
            n = len(self.dispatchers) + 1
            self.dispatchers.append(self.children.start(f"dispatcher-{n}", [PY, "-m", "app", "worker"], env))
        want = len(self.dispatchers)

        async def listening() -> bool:
            for child in self.dispatchers:
                if not child.alive():
                    raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            listeners = await self.db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'", self.db_name
            )
            return int(listeners) >= want

        await wait_until(listening, f"{want} dispatcher(s) listening", 60, 0.1)

    async def stop_dispatchers(self) -> None:
        for child in self.dispatchers:
            self.children.stop(child)
        self.dispatchers = []
        in_flight = (await self.db.outbox()).get("in_flight", 0)
        if in_flight:
            log(f"  ! {in_flight} dispatches were in flight when the dispatchers stopped (their lease will expire)")

    # -- load generation --

    async def loadgen(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        self.loadgen_count += 1
        stem = self.work / f"{self.loadgen_count:02d}-{name}"
        spec_path, out_path = stem.with_suffix(".spec.json"), stem.with_suffix(".result.json")
        spec_path.write_text(json.dumps(spec))
        child = self.children.start(
            f"loadgen-{name}", [PY, "-m", "bench.loadgen", str(spec_path), str(out_path)], {**self.base_env()}
        )
        deadline = time.monotonic() + 900
        while child.alive():
            if time.monotonic() > deadline:
                raise BenchFailure(f"load generator {name} did not finish")
            await asyncio.sleep(0.1)
        self.children.stop(child)
        if child.process is None or child.process.returncode != 0 or not out_path.exists():
            raise BenchFailure(f"load generator {name} failed:\n{child.tail()}")
        result: dict[str, Any] = json.loads(out_path.read_text())
        return result

    def spec(self, base: str, mode: str, prefix: str, docs: float, **extra: Any) -> dict[str, Any]:
        config = self.config
        purchases = min(config.max_purchases_built, max(60, math.ceil(docs / 3)))
        return {
            "base_url": base,
            "mode": mode,
            "keys": self.keys,
            "prefix": prefix,
            "start": 0,
            "purchases": purchases,
            "seed": 0,
            "concurrency": self.config.batch_concurrency
            if mode.startswith("batch")
            else self.config.single_concurrency,
            "warmup_s": self.config.warmup_s,
            "duration_s": self.config.duration_s,
            "timeout_s": 120,
        } | extra

    def docs_for(self, rate: float | None) -> float:
        """Documents to build for a timed run at about ``rate`` documents/s (with room to spare)."""
        return (rate or 100.0) * (self.config.warmup_s + self.config.duration_s) * 2 + 600

    def check_run(self, name: str, result: dict[str, Any]) -> None:
        bad = {code: n for code, n in result["statuses"].items() if not code.startswith("2")}
        problems = []
        if bad:
            problems.append(f"HTTP statuses {bad}")
        if result["transport_errors"]:
            problems.append(f"{result['transport_errors']} transport errors")
        if result["item_errors"]:
            problems.append(f"rejected items {result['item_errors']}")
        if problems:
            detail = json.dumps(result["errors"][:3], ensure_ascii=False, indent=1)
            raise BenchFailure(f"{name}: {'; '.join(problems)}\nfirst errors: {detail}")

    async def run_service(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """A load-generator run against the service, then: every acknowledged document is in the database."""
        before = await self.db.documents()
        result = await self.loadgen(name, spec)
        self.check_run(name, result)
        stored = await self.db.documents() - before
        acked = result["distinct_keys_acked"]
        self.results["checks"].append({"run": name, "acknowledged_distinct": acked, "stored": stored})
        if stored != acked:
            raise BenchFailure(f"{name}: {acked} distinct documents acknowledged but {stored} stored")
        self._print_run(name, result)
        return result

    async def run_baseline(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        before = await self.db.baseline_rows()
        result = await self.loadgen(name, spec | {"keys": {}, "cycle": True})
        self.check_run(name, result)
        stored = await self.db.baseline_rows() - before
        self.results["checks"].append({"run": name, "acknowledged": result["docs_acked"], "stored": stored})
        if stored != result["docs_acked"]:
            raise BenchFailure(f"{name}: {result['docs_acked']} documents acknowledged but {stored} rows stored")
        self._print_run(name, result)
        return result

    @staticmethod
    def _print_run(name: str, result: dict[str, Any]) -> None:
        m = result["measured"]
        lat = m["latency_ms"]
        note = " (workload exhausted before the end of the window)" if result["exhausted"] else ""
        log(
            f"  {name:<28} {m['docs_per_s']:>9,.0f} docs/s  {m['requests_per_s']:>8,.0f} req/s  "
            f"p50 {lat.get('p50', math.nan):>7.1f} ms  p99 {lat.get('p99', math.nan):>7.1f} ms  "
            f"({m['requests']:,} requests in {result['window_s']:.1f} s){note}"
        )

    # -- phases --

    async def setup(self) -> None:
        from bench.baseline_app import create_table

        log("migrating the database; starting mock agencies (20 ms), service (2 workers), baseline (2 workers)")

        async def migrate() -> None:
            await asyncio.to_thread(_migrate, self.sa_url)
            await create_table(self.sa_url)

        await self.start_servers(asyncio.ensure_future(migrate()))
        self.db = Db(await asyncpg.connect(self.pg_url))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.ports['service']}", timeout=60) as client:
            self.keys = await workload.file_everything(client, self.admin_token)
        log(f"filed {len(workload.ENTERPRISES)} enterprises and {sum(map(len, workload.CATALOGUE.values()))} goods")
        # Template purchases for the seeding: real ones, through the API, cleared by the dispatcher.
        await self.start_dispatchers(1)
        base = f"http://127.0.0.1:{self.ports['service']}"
        spec = self.spec(base, "single", seeding.TEMPLATE_PREFIX, 0) | {
            "purchases": self.config.templates,
            "warmup_s": 0,
            "duration_s": 600,
            "concurrency": 4,
        }
        result = await self.loadgen("templates", spec)
        self.check_run("templates", result)
        await self.drain("templates")
        await self.stop_dispatchers()
        statuses = await self.db.record_statuses(seeding.TEMPLATE_PREFIX)
        log(f"template purchases: {statuses}")
        self.seeded = 0

    async def drain(self, what: str) -> float:
        async def empty() -> bool:
            return await self.db.backlog() == 0

        return await wait_until(empty, f"outbox drain after {what}", self.config.drain_timeout_s, 0.1)

    async def seed_to(self, target: int) -> dict[str, Any]:
        if target <= self.seeded:
            return {"purchases": 0}
        log(f"seeding purchases {self.seeded:,} → {target:,}")
        outcome = await seeding.seed(self.pg_url, self.seeded, target, lambda m: log(f"  {m}"))
        self.seeded = target
        log(f"  seeded in {outcome['insert_s']:.1f} s + ANALYZE {outcome['analyze_s']:.1f} s")
        return outcome

    async def ingest_point(self, index: int, stored: int) -> dict[str, Any]:
        service = f"http://127.0.0.1:{self.ports['service']}"
        baseline = f"http://127.0.0.1:{self.ports['baseline']}"
        point: dict[str, Any] = {"stored_purchases": stored}
        point["stored_documents"] = await self.db.documents()
        first = index == 0
        reference = self.results["scale"][0] if self.results["scale"] else None  # the first point's figures
        log(f"scale point {index + 1}: {stored:,} purchases stored ({point['stored_documents']:,} documents)")
        if first or self.config.baselines_at_every_point:
            point["baseline_single"] = await self.run_baseline(
                "baseline single", self.spec(baseline, "single", f"Z{index}S", 3000)
            )
        estimate = _m(point["baseline_single"]) if reference is None else _m(reference["single"])
        point["single"] = await self.run_service(
            "service single (JSON)", self.spec(service, "single", f"A{index}S", self.docs_for(estimate))
        )
        if first or self.config.baselines_at_every_point:
            point["baseline_batch"] = await self.run_baseline(
                "baseline batch", self.spec(baseline, "batch_json", f"Z{index}B", 6000)
            )
        estimate = _m(point["baseline_batch"]) if reference is None else _m(reference["batch_json"])
        point["batch_json"] = await self.run_service(
            "service batch (JSON)", self.spec(service, "batch_json", f"A{index}J", self.docs_for(estimate))
        )
        if first:
            estimate = 1.5 * point["batch_json"]["measured"]["docs_per_s"]  # XML may well be faster
            point["batch_xml"] = await self.run_service(
                "service batch (CEB XML)", self.spec(service, "batch_xml", f"A{index}X", self.docs_for(estimate))
            )
        return point

    async def top_up_backlog(self, prefix: str) -> None:
        """Enough pending dispatches for a dispatcher measurement (ingested by batches, not measured)."""
        backlog = await self.db.backlog()
        missing = self.config.dispatch_min_backlog - backlog
        if missing <= 0:
            return
        purchases = math.ceil(missing / 4 / 0.9)
        spec = self.spec(f"http://127.0.0.1:{self.ports['service']}", "batch_json", prefix, 0) | {
            "purchases": purchases,
            "warmup_s": 0,
            "duration_s": 900,
        }
        result = await self.loadgen(f"backlog {prefix}", spec)
        self.check_run(f"backlog {prefix}", result)

    async def dispatcher_rate(self, workers: int) -> dict[str, Any]:
        """Bring the running dispatchers up to ``workers`` on the backlog; deliveries/s over a window that starts
        once they all listen and ends after ``dispatch_window_s`` or when the backlog is gone."""
        await self.start_dispatchers(workers - len(self.dispatchers))
        backlog = await self.db.backlog()
        start = await self.db.now()
        window = self.config.dispatch_window_s

        async def done() -> bool:
            if await self.db.backlog() == 0:
                return True
            return (await self.db.now() - start).total_seconds() >= window

        await wait_until(done, f"dispatcher window ({workers} worker(s))", window + 120, 0.1)
        end = await self.db.now()
        drained = await self.db.backlog() == 0
        if drained:
            last = await self.db.scalar("SELECT max(finished_at) FROM dispatch_attempt WHERE finished_at >= $1", start)
            end = last or end
        delivered = int(
            await self.db.scalar(
                "SELECT count(*) FROM dispatch_attempt WHERE outcome = 'delivered' AND finished_at BETWEEN $1 AND $2",
                start,
                end,
            )
        )
        cleared = int(
            await self.db.scalar(
                "SELECT count(*) FROM record_event WHERE kind = 'status_changed' AND detail->>'to' = 'CLEARED' "
                "AND at BETWEEN $1 AND $2",
                start,
                end,
            )
        )
        seconds = max((end - start).total_seconds(), 1e-6)
        outcome = {
            "workers": workers,
            "backlog_at_start": backlog,
            "window_s": round(seconds, 3),
            "drained_in_window": drained,
            "delivered": delivered,
            "dispatches_per_s": round(delivered / seconds, 1),
            "records_cleared": cleared,
            "records_cleared_per_s": round(cleared / seconds, 1),
        }
        log(
            f"  dispatcher, {workers} worker{'s' if workers > 1 else ' '}{'':<11} "
            f"{outcome['dispatches_per_s']:>9,.1f} dispatches/s  {outcome['records_cleared_per_s']:>8,.1f} "
            f"records cleared/s  (backlog {backlog:,}, {seconds:.1f} s)"
        )
        return outcome

    async def quiesce_dispatchers(self) -> int:
        """Park what is still waiting, let the deliveries in flight finish, then stop every dispatcher."""
        parked = await self.db.park_outbox()

        async def idle() -> bool:
            return await self.db.in_flight() == 0

        await wait_until(idle, "dispatches in flight to finish", 120, 0.1)
        await self.stop_dispatchers()
        return parked

    async def dispatch_and_latency(self, single_docs_per_s: float) -> None:
        log("dispatcher throughput (on the outbox the ingest runs left, topped up if short)")
        await self.top_up_backlog("D1")
        one = await self.dispatcher_rate(1)
        if one["drained_in_window"]:
            await self.stop_dispatchers()  # idle: nothing in flight
            await self.top_up_backlog("D2")
        two = await self.dispatcher_rate(2)
        parked = await self.quiesce_dispatchers()
        outbox = await self.db.outbox()
        self.results["dispatcher"] = {"1": one, "2": two, "parked_after": parked, "outbox": outbox}
        if outbox.get("dead"):
            raise BenchFailure(f"dispatches failed for good: {outbox}")
        # The latency run: an empty outbox (the rest is parked), one dispatcher, and a paced load it can keep up
        # with, so that the figure is the pipeline's latency rather than the length of a queue.
        sustainable = one["records_cleared_per_s"] * 3.06  # documents per purchase, resends included
        rate = max(5.0, 0.5 * min(single_docs_per_s, sustainable or single_docs_per_s))
        log(f"matched → CLEARED latency: single documents paced at {rate:,.1f} docs/s, one dispatcher running")
        await self.start_dispatchers(1)
        duration = self.config.latency_duration_s
        spec = self.spec(f"http://127.0.0.1:{self.ports['service']}", "single", "L0", rate * duration + 100)
        spec |= {"rate": rate, "warmup_s": 0, "duration_s": duration, "concurrency": 128}
        result = await self.run_service("service single, paced", spec)
        drain_s = await self.drain("latency run")
        values, not_cleared = await self.db.match_to_cleared_ms("L0")
        statuses = await self.db.record_statuses("L0")
        await self.stop_dispatchers()
        self.results["latency"] = {
            "rate_docs_per_s": round(rate, 1),
            "ingest": result,
            "match_to_cleared_ms": latency_summary(values),
            "matched_not_cleared": not_cleared,
            "record_statuses": statuses,
            "drain_after_s": round(drain_s, 2),
        }
        summary = self.results["latency"]["match_to_cleared_ms"]
        log(
            f"  matched → CLEARED{'':<14} p50 {summary.get('p50', math.nan):,.1f} ms  "
            f"p99 {summary.get('p99', math.nan):,.1f} ms  over {summary.get('count', 0):,} records; "
            f"statuses {statuses}"
        )
        if not_cleared:
            raise BenchFailure(f"{not_cleared} matched records of the latency run never reached CLEARED")

    async def sqlite_embedded(self) -> None:
        """``sw serve`` mode: one process on a SQLite file, dispatcher and mock agencies inside; vs the baseline."""
        log("embedded mode: one process on a SQLite file (dispatcher and mock agencies inside)")
        folder = self.work / "sqlite"
        folder.mkdir()
        app_db, base_db = folder / "single-window.db", folder / "baseline.db"
        env = self.base_env() | {
            "SW_DATABASE_URL": f"sqlite+aiosqlite:///{app_db}",
            "BENCH_DATABASE_URL": f"sqlite+aiosqlite:///{base_db}",
        }
        await asyncio.to_thread(_migrate, env["SW_DATABASE_URL"])
        from bench.baseline_app import create_table

        await create_table(env["BENCH_DATABASE_URL"])
        service = self.children.start(
            "sqlite-service", self.uvicorn("app.main:create_app", self.ports["sqlite"], 1), env
        )
        baseline = self.children.start(
            "sqlite-baseline", self.uvicorn("bench.baseline_app:create_app", self.ports["sqlite_baseline"], 1), env
        )
        try:
            await wait_http(f"http://127.0.0.1:{self.ports['sqlite']}/readyz", service, 90)
            await wait_http(f"http://127.0.0.1:{self.ports['sqlite_baseline']}/healthz", baseline, 60)
            base = f"http://127.0.0.1:{self.ports['sqlite']}"
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                keys = await workload.file_everything(client, self.admin_token)
            base_url = f"http://127.0.0.1:{self.ports['sqlite_baseline']}"
            before = _sqlite_count(base_db, "bench_baseline_document")
            bl = await self.loadgen(
                "sqlite baseline", self.spec(base_url, "single", "QZS", 3000) | {"keys": {}, "cycle": True}
            )
            self.check_run("sqlite baseline", bl)
            if _sqlite_count(base_db, "bench_baseline_document") - before != bl["docs_acked"]:
                raise BenchFailure("sqlite baseline: rows stored differ from documents acknowledged")
            self._print_run("sqlite baseline single", bl)
            estimate = bl["measured"]["docs_per_s"]
            spec = self.spec(base, "single", "QAS", self.docs_for(estimate)) | {"keys": keys}
            before = _sqlite_count(app_db, "document")
            single = await self.loadgen("sqlite single", spec)
            self.check_run("sqlite single", single)
            stored = _sqlite_count(app_db, "document") - before
            if stored != single["distinct_keys_acked"]:
                raise BenchFailure(f"sqlite single: {single['distinct_keys_acked']} acknowledged, {stored} stored")
            self._print_run("sqlite service single", single)
            self.results["sqlite"] = {"baseline_single": bl, "single": single}
        finally:
            self.children.stop(service)
            self.children.stop(baseline)

    async def run(self) -> None:
        await self.setup()
        for index, stored in enumerate(self.config.scale_points):
            seeded = await self.seed_to(stored)
            point = await self.ingest_point(index, stored)
            point["seed"] = seeded
            self.results["scale"].append(point)
            if index == 0:
                await self.dispatch_and_latency(point["single"]["measured"]["docs_per_s"])
        if self.config.sqlite:
            await self.sqlite_embedded()


def _migrate(url: str) -> None:
    from pydantic import SecretStr

    from app.config import Settings
    from app.migrate import upgrade

    upgrade(Settings(database_url=url, admin_token=SecretStr("unused"), _env_file=None))


def _sqlite_count(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - our own table names


# --- figures and output -----------------------------------------------------------------------------------


def machine(pg_version: str) -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    commit = _git("rev-parse", "--short", "HEAD") or None
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gb": memory_gb,
        "postgresql": pg_version,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": commit,
    }


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607
    except OSError:
        return ""
    return done.stdout.strip()


def _m(run: dict[str, Any] | None, key: str = "docs_per_s") -> float | None:
    return None if run is None else float(run["measured"][key])


def _lat(run: dict[str, Any] | None, q: str) -> float | None:
    if run is None:
        return None
    value = run["measured"]["latency_ms"].get(q)
    return None if value is None else float(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def figures(results: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The table rows (figure, measured, baseline, ratio, target, met) and the one-line summary."""
    rows: list[dict[str, Any]] = []

    def row(figure: str, measured: str, baseline: str = "", ratio: float | None = None, target: str = "",
            met: bool | None = None) -> None:  # fmt: skip
        rows.append(
            {
                "figure": figure,
                "measured": measured,
                "baseline": baseline,
                "ratio": "" if ratio is None else f"{ratio:.3g}×",
                "target": target,
                "met": met,
            }
        )

    scale = results["scale"]
    main = scale[0]
    single, base_single = main["single"], main["baseline_single"]
    single_ratio = _ratio(_m(single), _m(base_single))
    row(
        "single-document POST (JSON), docs/s",
        f"{_m(single):,.0f} (p50 {_lat(single, 'p50'):.1f} ms, p99 {_lat(single, 'p99'):.1f} ms)",
        f"{_m(base_single):,.0f} (p50 {_lat(base_single, 'p50'):.1f} ms, p99 {_lat(base_single, 'p99'):.1f} ms)",
        single_ratio,
        f"≥ {TARGET_SINGLE_RATIO}× baseline",
        single_ratio is not None and single_ratio >= TARGET_SINGLE_RATIO,
    )
    base_batch = _m(main["baseline_batch"])
    for key, label in (("batch_json", "JSON"), ("batch_xml", "CEB XML")):
        value = _m(main[key])
        ratio = _ratio(value, base_batch)
        row(
            f"batch ingest, 100 per batch ({label}), docs/s",
            f"{value:,.0f} (p50 {_lat(main[key], 'p50'):,.0f} ms, p99 {_lat(main[key], 'p99'):,.0f} ms per batch)",
            f"{base_batch:,.0f}",
            ratio,
            f"≥ {TARGET_BATCH_DOCS:,.0f} docs/s and ≥ {TARGET_BATCH_RATIO}× baseline",
            value is not None and ratio is not None and value >= TARGET_BATCH_DOCS and ratio >= TARGET_BATCH_RATIO,
        )
    latency = results.get("latency")
    if latency:
        lat = latency["match_to_cleared_ms"]
        row(
            f"matched → CLEARED, 20 ms agencies (paced {latency['rate_docs_per_s']:,.0f} docs/s), ms",
            f"p50 {lat.get('p50', math.nan):,.0f}, p99 {lat.get('p99', math.nan):,.0f} "
            f"({lat.get('count', 0):,} records)",
            "",
            None,
            f"p99 ≤ {TARGET_P99_MS:,.0f} ms",
            lat.get("p99", math.inf) <= TARGET_P99_MS,
        )
    dispatcher = results.get("dispatcher")
    if dispatcher:
        one, two = dispatcher["1"], dispatcher["2"]
        for d in (one, two):
            row(
                f"dispatcher, {d['workers']} worker{'s' if d['workers'] > 1 else ''}: dispatches/s (records cleared/s)",
                f"{d['dispatches_per_s']:,.0f} ({d['records_cleared_per_s']:,.0f})",
                "",
                _ratio(d["dispatches_per_s"], one["dispatches_per_s"]) if d is two else None,
            )
    first_single, first_batch = _m(main["single"]), _m(main["batch_json"])
    for point in scale:
        stored = f"{point['stored_purchases']:,} stored"
        for key, label, reference in (
            ("single", "single docs/s", first_single),
            ("batch_json", "batch docs/s", first_batch),
        ):
            value = _m(point[key])
            ratio = _ratio(value, reference)
            baseline_key = "baseline_single" if key == "single" else "baseline_batch"
            base = _m(point.get(baseline_key))
            # The same ratio with each point's figure taken relative to its own baseline: the machine's drift
            # between the points (other tenants, the page cache) cancels out.
            relative = _ratio(_ratio(value, base), _ratio(reference, _m(main.get(baseline_key))))
            note = "" if point is main or relative is None else f" ({relative:.3g}× relative to the baselines)"
            row(
                f"scale: {label}, {stored}",
                f"{value:,.0f}{note}",
                "" if base is None else f"{base:,.0f}",
                ratio,
                "" if point is main else f"≥ {TARGET_SCALE_RATIO}× the {scale[0]['stored_purchases']:,} point",
                None if point is main else (ratio is not None and ratio >= TARGET_SCALE_RATIO),
            )
    sqlite_runs = results.get("sqlite")
    if sqlite_runs:
        s, b = sqlite_runs["single"], sqlite_runs["baseline_single"]
        row(
            "embedded SQLite, single-document POST, docs/s",
            f"{_m(s):,.0f} (p50 {_lat(s, 'p50'):.1f} ms, p99 {_lat(s, 'p99'):.1f} ms)",
            f"{_m(b):,.0f} (p50 {_lat(b, 'p50'):.1f} ms, p99 {_lat(b, 'p99'):.1f} ms)",
            _ratio(_m(s), _m(b)),
        )
    last = scale[-1]
    summary = {
        "mode": results["mode"],
        "single_doc_rps": _m(single),
        "single_p50_ms": _lat(single, "p50"),
        "single_p99_ms": _lat(single, "p99"),
        "baseline_rps": _m(base_single),
        "single_ratio": single_ratio,
        "batch_docs_per_s": _m(main["batch_json"]),
        "batch_xml_docs_per_s": _m(main["batch_xml"]),
        "batch_baseline_docs_per_s": base_batch,
        "batch_ratio": _ratio(_m(main["batch_json"]), base_batch),
        "match_to_cleared_p50_ms": (latency or {}).get("match_to_cleared_ms", {}).get("p50"),
        "match_to_cleared_p99_ms": (latency or {}).get("match_to_cleared_ms", {}).get("p99"),
        "dispatches_per_s_1_worker": (dispatcher or {}).get("1", {}).get("dispatches_per_s"),
        "dispatches_per_s_2_workers": (dispatcher or {}).get("2", {}).get("dispatches_per_s"),
        "scale_points": [p["stored_purchases"] for p in scale],
        "scale_single_ratio": _ratio(_m(last["single"]), first_single),
        "scale_batch_ratio": _ratio(_m(last["batch_json"]), first_batch),
        "scale_single_ratio_vs_baselines": _ratio(
            _ratio(_m(last["single"]), _m(last.get("baseline_single"))), single_ratio
        ),
        "scale_batch_ratio_vs_baselines": _ratio(
            _ratio(_m(last["batch_json"]), _m(last.get("baseline_batch"))), _ratio(first_batch, base_batch)
        ),
        "sqlite_single_doc_rps": _m((sqlite_runs or {}).get("single")),
        "sqlite_baseline_rps": _m((sqlite_runs or {}).get("baseline_single")),
        "elapsed_s": results.get("elapsed_s"),
    }
    return rows, summary


def markdown(results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m = results["machine"]
    lines = [
        f"Benchmark ({results['mode']}), {results['started_at']}, commit {m.get('commit')}: {m['cores']} cores "
        f"({m['cpu']}), {m.get('memory_gb')} GB, PostgreSQL {m['postgresql']} on the same machine, Python "
        f"{m['python']}; load average at start {m['load_average_at_start']}. Service and baseline: uvicorn, "
        f"2 worker processes; {results['config']['single_concurrency']} connections for single documents, "
        f"{results['config']['batch_concurrency']} for batches; {results['config']['duration_s']:.0f} s measured "
        f"after {results['config']['warmup_s']:.0f} s of warm-up.",
        "",
        "| figure | measured | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['figure']} | {r['measured']} | {r['baseline']} | {r['ratio']} | {r['target']} | {met} |")
    return "\n".join(lines) + "\n"


def write_outputs(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rows, summary = figures(results)
    results["figures"] = rows
    results["summary"] = summary
    table = markdown(results, rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = json.dumps(results, ensure_ascii=False, indent=1, default=str)
    (RESULTS / f"bench-{results['mode']}-{stamp}.json").write_text(payload)
    latest = "latest-quick" if results["mode"] == "quick" else "latest"
    (RESULTS / f"{latest}.json").write_text(payload)
    (RESULTS / f"{latest}.md").write_text(table)
    if results["mode"] == "full" and DOC.exists():
        text = DOC.read_text()
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            DOC.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")
    return table, summary


# --- main -------------------------------------------------------------------------------------------------


async def bench(config: Config, children: Children, db_name: str, work: Path) -> dict[str, Any]:
    started = time.monotonic()
    await admin_execute(f'CREATE DATABASE "{db_name}"')
    harness = Harness(config, children, db_name, work)
    conn = await asyncpg.connect(harness.pg_url)
    try:
        pg_version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    info = machine(pg_version)
    log(
        f"machine: {info['cores']} cores, {info['cpu']}, {info['memory_gb']} GB, PostgreSQL {pg_version}, "
        f"Python {info['python']}, load average {info['load_average_at_start']}"
    )
    harness.results |= {
        "mode": config.mode,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "config": asdict(config),
    }
    try:
        await harness.run()
    finally:
        with contextlib.suppress(Exception):
            await harness.db.conn.close()
    harness.results["elapsed_s"] = round(time.monotonic() - started, 1)
    harness.results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return harness.results


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Single Window benchmark harness (docs/performance.md)")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CI shape, ≤ 3 minutes)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database (debugging)")
    args = parser.parse_args()
    config = QUICK if args.quick else FULL
    # Explicitly: a process started in the background inherits SIGINT ignored, and Python then installs nothing.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    db_name = f"sw_bench_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    children = Children(work)
    log(f"bench {config.mode}: database {db_name}, logs and load-generator files in {work}")
    code = 0
    results: dict[str, Any] | None = None
    try:
        results = asyncio.run(bench(config, children, db_name, work))
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        code = 130
    except BenchFailure as failure:
        log(f"\nBENCH FAILED: {failure}")
        code = 1
    except Exception as exc:
        log(f"\nBENCH FAILED: {type(exc).__name__}: {exc}")
        for child in children.children:
            log(f"--- {child.name} (last lines of {child.log_path}) ---\n{child.tail(20)}")
        code = 1
    finally:
        children.stop_all()
        if args.keep_db:
            log(f"kept database {db_name}")
        else:
            try:
                asyncio.run(admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            except Exception as exc:
                log(f"! could not drop {db_name}: {exc}")
                code = code or 1
    if results is None:
        return code
    table, summary = write_outputs(results)
    log("")
    log(table)
    log(f"results: bench/results/{'latest-quick' if args.quick else 'latest'}.json (and a timestamped copy)")
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
