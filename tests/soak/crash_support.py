"""Shared machinery of the process-level soak suites (crashes, database restart, agency faults).

Our own processes (``sw …``, forked by ``crash_forkserver.py``) with their output in a log file, killed by
pid and restarted; the mock agencies as a real server; purchases posted through the API to make dispatches; the
dispatch ledger read back from the database and compared with what each agency says it answered.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Parties, purchase
from tests.live import clean_env, free_port
from tests.soak.crash_forkserver import ForkedProcess, forkserver

AGENCIES = ("customs", "inspection", "tax", "fx")
FINAL = ("delivered", "dead")
# Nothing decided for inspection: no release callbacks owed to a service the mock agencies cannot reach.
NO_INSPECTION = {
    "SW_SUPERVISION_RATE_REGULAR": "0",
    "SW_RISK_INSPECT_ON_WARNING": "false",
}


class Sw:
    """``sw <command>`` as a real process of its own, forked from the forkserver (``crash_forkserver.py``);
    ``start()`` again after a kill gives a new process on the same port, writing to the same log."""

    def __init__(self, command: str, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.argv = [command] + (["--host", "127.0.0.1", "--port", str(port)] if port is not None else [])
        self.env, self.log = env, log
        self.process: ForkedProcess | None = None

    def start(self) -> Sw:
        self.process = forkserver().spawn(self.argv, self.env, self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> int:
        """SIGKILL; the exit code (``-9``)."""
        assert self.process is not None
        return self.process.kill()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def sw(command: str, env: dict[str, str], log: Path, port: int | None = None) -> Sw:
    return Sw(command, env, log, port)


async def wait_ready(proc: Sw, url: str, timeout_s: float = 60) -> float:
    """Until ``url`` answers 200; seconds it took."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            try:
                if (await http.get(url)).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            assert proc.alive(), f"sw {proc.argv} exited early:\n{proc.tail()}"
            assert time.monotonic() - started < timeout_s, f"sw {proc.argv} not ready:\n{proc.tail()}"
            await asyncio.sleep(0.05)


@asynccontextmanager
async def mock_agencies(log_dir: Path, **settings: str) -> AsyncIterator[str]:
    """``sw mock-agencies`` on a free port; yields its base URL."""
    port = free_port()
    proc = sw("mock-agencies", clean_env(**NO_INSPECTION, **settings), log_dir / "mock-agencies.log", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(proc, f"{base}/mock/customs/stats")
        yield base
    finally:
        proc.stop()


def agency_urls(base: str) -> str:
    return json.dumps({agency: f"{base}/mock/{agency}" for agency in AGENCIES})


async def agency_answers(base: str) -> dict[str, list[dict[str, Any]]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return {agency: (await http.get(f"/mock/{agency}/answers")).raise_for_status().json() for agency in AGENCIES}


async def agency_stats(base: str) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return {agency: (await http.get(f"/mock/{agency}/stats")).raise_for_status().json() for agency in AGENCIES}


async def bounded(limit: int, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


async def post_purchases(client: httpx.AsyncClient, parties: Parties, count: int, concurrency: int = 8) -> None:
    """``count`` complete purchases (each its own buyer) through the API: ``count`` declared records, one
    dispatch per agency each, waiting in the outbox."""

    async def one() -> None:
        order, payment, waybill = purchase(own_buyer=True)
        for path, body, headers in (
            ("/api/v1/orders", order, parties.platform),
            ("/api/v1/payments", payment, parties.payment),
            ("/api/v1/waybills", waybill, parties.logistics),
        ):
            response = await client.post(path, json=body, headers=headers)
            assert response.status_code == 201, response.text

    await bounded(concurrency, [one for _ in range(count)])


async def open_dispatches(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM dispatch WHERE status NOT IN ('delivered', 'dead')")))


async def wait_all_final(engine: AsyncEngine, alive: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while (left := await open_dispatches(engine)) > 0:
        assert alive(), f"{what} died with {left} dispatches open"
        assert time.monotonic() < deadline, f"{left} dispatches still open after {timeout_s} s"
        await asyncio.sleep(0.2)


@dataclass
class Ledger:
    """The outbox as the database has it, against what the agencies say they acted on."""

    dispatches: int = 0
    records: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    not_final: list[str] = field(default_factory=list)  # still pending / retry / in flight
    missing_dispatches: list[str] = field(default_factory=list)  # a declared record without one per agency
    delivered_unknown_to_agency: list[str] = field(default_factory=list)  # "delivered", the agency never acted
    unknown_keys: list[str] = field(default_factory=list)  # the agency acted on a key we never issued
    duplicates: list[str] = field(default_factory=list)  # one record acted on twice by one agency (two keys)
    recorded_twice: list[str] = field(default_factory=list)  # one reply written in two transactions
    delivered_without_reply: list[str] = field(default_factory=list)
    dead_early: list[str] = field(default_factory=list)  # dead before using every attempt
    raw_redeliveries: int = 0  # calls the agency answered again from memory (same key)
    attempts: list[int] = field(default_factory=list)  # per delivered dispatch

    @property
    def lost(self) -> int:
        return len(self.not_final) + len(self.missing_dispatches) + len(self.delivered_unknown_to_agency)

    def assert_clean(self) -> None:
        assert not self.not_final, f"not delivered nor dead: {self.not_final[:5]}"
        assert not self.missing_dispatches, f"records without a dispatch per agency: {self.missing_dispatches[:5]}"
        assert not self.delivered_unknown_to_agency, f"delivered, unknown: {self.delivered_unknown_to_agency[:5]}"
        assert not self.unknown_keys, f"keys the agencies got that we never issued: {self.unknown_keys[:5]}"
        assert not self.duplicates, f"acted on twice after dedupe: {self.duplicates[:5]}"
        assert not self.recorded_twice, f"one reply recorded twice: {self.recorded_twice[:5]}"
        assert not self.delivered_without_reply, f"delivered without a stored reply: {self.delivered_without_reply}"

    def percentile_attempts(self, q: float) -> int:
        """Nearest-rank percentile of the attempts of delivered dispatches."""
        ordered = sorted(self.attempts)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0


async def ledger(engine: AsyncEngine, answers: dict[str, list[dict[str, Any]]], max_attempts: int) -> Ledger:
    out = Ledger()
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, record_id, agency, status, attempts FROM dispatch"))).all()
        declared = (await conn.execute(text("SELECT record_id FROM declaration"))).scalars().all()
        twice = (
            await conn.execute(
                text(
                    "SELECT dispatch_id FROM agency_receipt WHERE source = 'reply' AND dispatch_id IS NOT NULL "
                    "GROUP BY dispatch_id HAVING count(DISTINCT received_at) > 1"
                )
            )
        ).scalars()
        with_reply = set(
            (
                await conn.execute(text("SELECT DISTINCT dispatch_id FROM agency_receipt WHERE source = 'reply'"))
            ).scalars()
        )
    out.dispatches, out.records = len(rows), len(declared)
    out.recorded_twice = [str(d) for d in twice]
    per_record: dict[str, set[str]] = {}
    issued = {str(r.id): r for r in rows}
    for row in rows:
        out.statuses[row.status] += 1
        per_record.setdefault(str(row.record_id), set()).add(row.agency)
        if row.status not in FINAL:
            out.not_final.append(str(row.id))
        if row.status == "delivered":
            out.attempts.append(row.attempts)
            if row.id not in with_reply:
                out.delivered_without_reply.append(str(row.id))
        if row.status == "dead" and row.attempts < max_attempts:
            out.dead_early.append(str(row.id))
    out.missing_dispatches = [str(r) for r in declared if per_record.get(str(r)) != set(AGENCIES)]
    for agency, answered in answers.items():
        keys = {a["idempotencyKey"] for a in answered}
        out.raw_redeliveries += sum(a["deliveries"] - 1 for a in answered)
        out.unknown_keys += [k for k in keys if k not in issued or issued[k].agency != agency]
        by_record = Counter(a["recordId"] for a in answered)
        out.duplicates += [f"{agency}:{r}" for r, n in by_record.items() if n > 1]
        out.delivered_unknown_to_agency += [
            d for d, row in issued.items() if row.agency == agency and row.status == "delivered" and d not in keys
        ]
    return out
