"""The staged pipeline read back from the database: every accepted submission processed exactly once.

Intake only accepts (a ``submission`` row, 202); a matcher applies it later and stores its business result.
``wait_drained`` waits until no submission is pending; ``pipeline_ledger`` then checks, from the database alone:

- every submission ``done`` (none pending, none ``dead``), its outcome and HTTP status set;
- each processed exactly once: one ``document_receipt`` event per submission (the match stage writes it in the
  transaction that marks the submission done; a second application would write a second one);
- a stored (or replayed) submission points at its document, and that document exists;
- one document per natural key, one ``match_record`` per (ebpCode, orderNo), one dispatch per (record, agency);
- every purchase given as complete is one record, ``DECLARED`` (or further), with its three documents, a
  declaration and one dispatch per agency;
- every document given as acknowledged has its submission and its stored document.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Parties
from tests.soak.crash_forkserver import ForkedProcess, forkserver

# Declared, then possibly answered by the agencies (a refusal still leaves its declaration and dispatches).
DECLARED_OR_LATER = ("DECLARED", "INSPECTION", "CLEARED", "REJECTED")
AGENCIES = 4
PATHS = {"order": "/api/v1/orders", "payment": "/api/v1/payments", "waybill": "/api/v1/waybills"}
KEYS = {
    "order": ("ebpCode", "orderNo"),
    "payment": ("payCode", "payTransactionId"),
    "waybill": ("logisticsCode", "logisticsNo"),
}
SENDER = {"order": "platform", "payment": "payment", "waybill": "logistics"}


def doc_key(doc_type: str, body: dict[str, Any]) -> tuple[str, str, str]:
    owner, number = KEYS[doc_type]
    return (doc_type, str(body[owner]), str(body[number]))


async def accept(
    http: httpx.AsyncClient, parties: Parties, doc_type: str, bodies: list[dict[str, Any]]
) -> list[tuple[str, str, str]]:
    """``bodies`` through the batch route (100 at a time, no ``Prefer: wait``): each must be accepted (202)."""
    keys = []
    for start in range(0, len(bodies), 100):
        chunk = bodies[start : start + 100]
        answer = await http.post(
            f"{PATHS[doc_type]}/batch", json={"items": chunk}, headers=getattr(parties, SENDER[doc_type])
        )
        assert answer.status_code == 200, answer.text[:500]
        statuses = Counter(item["status"] for item in answer.json()["items"])
        assert statuses == {202: len(chunk)}, (statuses, answer.text[:500])
        keys += [doc_key(doc_type, body) for body in chunk]
    return keys


def spawn_matcher(env: dict[str, str], log: Path, point: str = "none", nth: int = 0) -> ForkedProcess:
    """``app.matcher.main()`` — the code of ``python -m app.matcher`` — in a process of its own, with a kill
    planted at ``point`` (``crash_matcher.py``); it logs ``claimed <n>`` for each micro-batch."""
    return forkserver().spawn(["matcher"], env, log, (f"matcher:{point}", nth))


def claimed(log: Path) -> int:
    """Submissions the matcher of ``log`` claimed (its micro-batches, committed or not)."""
    if not log.exists():
        return 0
    lines = log.read_text(errors="replace").splitlines()
    return sum(int(line.split()[1]) for line in lines if line.startswith("claimed "))


async def matcher_started(proc: ForkedProcess) -> int | None:
    """Until the matcher has logged that it runs (None), or died before that (its exit code)."""
    for _ in range(2000):
        if (code := proc.server.exit_code(proc.pid)) is not None:
            return code
        if proc.log.exists() and "matcher started" in proc.log.read_text(errors="replace"):
            return None
        await asyncio.sleep(0.01)
    raise AssertionError(f"matcher {proc.pid} did not start:\n{proc.tail()}")


async def stop_local_matcher(app: FastAPI) -> None:
    """Stop the matcher embedded in the test's own app (the ``app`` fixture runs one): in a suite whose
    matchers are the processes under test, it would take their work, and hold connections of its own."""
    matcher = getattr(app.state, "matcher", None)
    if matcher is not None:
        matcher.stop()
        await asyncio.sleep(0.3)  # its round in progress, if any, ends


async def pending(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM submission WHERE state = 'pending'")))


async def wait_drained(
    engine: AsyncEngine, timeout_s: float, alive: Callable[[], bool] = lambda: True, what: str = "the matcher"
) -> None:
    """Until no submission is pending (the matcher(s) must be running); fails when ``alive`` turns false."""
    deadline = time.monotonic() + timeout_s
    while (left := await pending(engine)) > 0:
        assert alive(), f"{what} died with {left} submissions pending"
        assert time.monotonic() < deadline, f"{left} submissions still pending after {timeout_s} s"
        await asyncio.sleep(0.1)


@dataclass
class PipelineLedger:
    submissions: int = 0
    exactly_once: int = 0  # done, outcome set, one receipt event
    outcomes: Counter[str] = field(default_factory=Counter)
    documents: int = 0
    records: int = 0
    dispatches: int = 0
    not_done: list[str] = field(default_factory=list)  # pending or dead
    outcome_missing: list[str] = field(default_factory=list)  # done, without outcome or HTTP status
    unprocessed: list[str] = field(default_factory=list)  # done without its receipt event: never applied
    processed_twice: list[str] = field(default_factory=list)  # two receipt events: applied twice
    without_document: list[str] = field(default_factory=list)  # stored/replayed, its document missing
    rejected: list[str] = field(default_factory=list)  # outcome rejected (only some suites expect none)
    lost: list[str] = field(default_factory=list)  # acknowledged, no processed submission or no document
    duplicate_documents: list[str] = field(default_factory=list)
    duplicate_records: list[str] = field(default_factory=list)
    duplicate_dispatches: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)  # a complete purchase not one declared record

    @property
    def duplicates(self) -> int:
        return len(self.processed_twice) + len(self.duplicate_documents) + len(self.duplicate_records)

    def assert_clean(self, *, allow_rejected: bool = False) -> None:
        assert not self.not_done, f"submissions not done: {self.not_done[:5]}"
        assert not self.outcome_missing, f"done without an outcome: {self.outcome_missing[:5]}"
        assert not self.unprocessed, f"done, never applied (no receipt event): {self.unprocessed[:5]}"
        assert not self.processed_twice, f"applied twice: {self.processed_twice[:5]}"
        assert not self.without_document, f"stored without its document: {self.without_document[:5]}"
        assert allow_rejected or not self.rejected, f"rejected: {self.rejected[:5]}"
        assert not self.lost, f"acknowledged, not processed or not stored: {self.lost[:5]}"
        assert not self.duplicate_documents, f"documents stored twice: {self.duplicate_documents[:5]}"
        assert not self.duplicate_records, f"two records for one purchase: {self.duplicate_records[:5]}"
        assert not self.duplicate_dispatches, f"two dispatches for one (record, agency): {self.duplicate_dispatches}"
        assert not self.undeclared, f"complete purchases not declared once: {self.undeclared[:5]}"


async def pipeline_ledger(
    engine: AsyncEngine,
    acknowledged: Iterable[tuple[str, str, str]] = (),
    complete: Iterable[tuple[str, str]] = (),
) -> PipelineLedger:
    """``acknowledged``: (doc type, owner code, business no) answered 202/200/201; ``complete``: (ebpCode,
    orderNo) of purchases whose three documents were all acknowledged."""
    out = PipelineLedger()
    async with engine.connect() as conn:
        submissions = (
            await conn.execute(
                text(
                    "SELECT s.seq, s.doc_type, s.owner_code, s.business_no, s.state, s.outcome, s.http_status, "
                    "s.document_id, s.result, (SELECT count(*) FROM document d WHERE d.id = s.document_id) AS doc "
                    "FROM submission s ORDER BY s.seq"
                )
            )
        ).all()
        receipts = dict(
            (
                await conn.execute(
                    text(
                        "SELECT (detail->>'seq')::bigint, count(*) FROM record_event "
                        "WHERE kind = 'document_receipt' GROUP BY 1"
                    )
                )
            ).all()
        )
        documents = (
            await conn.execute(
                text("SELECT doc_type, owner_code, business_no, count(*) AS n FROM document GROUP BY 1, 2, 3")
            )
        ).all()
        records = (
            await conn.execute(
                text(
                    "SELECT r.ebp_code, r.order_no, r.status, count(*) OVER w AS n, "
                    "(SELECT count(*) FROM document d WHERE d.record_id = r.id) AS docs, "
                    "EXISTS (SELECT 1 FROM declaration x WHERE x.record_id = r.id) AS declared, "
                    "(SELECT count(*) FROM dispatch s WHERE s.record_id = r.id) AS dispatches "
                    "FROM match_record r WINDOW w AS (PARTITION BY r.ebp_code, r.order_no)"
                )
            )
        ).all()
        dispatches = (
            await conn.execute(text("SELECT record_id, agency, count(*) AS n FROM dispatch GROUP BY 1, 2"))
        ).all()
    out.submissions = len(submissions)
    out.documents = sum(d.n for d in documents)
    out.records = len(records)
    out.dispatches = sum(d.n for d in dispatches)
    processed: set[tuple[str, str, str]] = set()
    for s in submissions:
        name = f"#{s.seq} {s.doc_type} {s.business_no}"
        out.outcomes[s.outcome or s.state] += 1
        if s.state != "done":
            out.not_done.append(f"{name}: {s.state}")
            continue
        if s.outcome is None or s.http_status is None:
            out.outcome_missing.append(name)
        events = receipts.get(s.seq, 0)
        out.exactly_once += events == 1 and s.outcome is not None and s.http_status is not None
        if events == 0:
            out.unprocessed.append(name)
        elif events > 1:
            out.processed_twice.append(f"{name}: {events} receipts")
        if s.outcome in ("stored", "replayed"):
            if not s.doc:
                out.without_document.append(name)
            else:
                processed.add((s.doc_type, s.owner_code, s.business_no))
        elif s.outcome == "rejected":
            out.rejected.append(f"{name}: {s.http_status} {(s.result or {}).get('code')}")
    out.lost = [str(doc) for doc in acknowledged if doc not in processed]
    out.duplicate_documents = [f"{d.doc_type} {d.business_no}" for d in documents if d.n > 1]
    out.duplicate_records = [f"{r.ebp_code} {r.order_no}" for r in records if r.n > 1]
    out.duplicate_dispatches = [f"{d.record_id} {d.agency}" for d in dispatches if d.n > 1]
    by_purchase = {(r.ebp_code, r.order_no): r for r in records}
    for key in complete:
        record = by_purchase.get(key)
        if record is None:
            out.undeclared.append(f"{key}: no record")
        elif not (
            record.status in DECLARED_OR_LATER
            and record.docs == 3
            and record.declared
            and record.dispatches == AGENCIES
        ):
            out.undeclared.append(
                f"{key}: {record.status}, {record.docs} documents, declared {record.declared}, "
                f"{record.dispatches} dispatches"
            )
    return out
