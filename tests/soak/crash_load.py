"""Ingest load for the crash and database-restart suites, and the check that what was acknowledged is stored.

``Load`` posts complete purchases (order, payment, waybill — each buyer its own) from ``concurrency``
clients until told to stop, like a well-behaved platform: a document is sent again, unchanged, after a
network error, a timeout or a 503, until it is acknowledged (2xx). Every answer is kept with its send and
receive times. ``stored_state`` then reads the database: every acknowledged document present once, every
complete purchase one record, declared, with its three documents, its audit rows and one dispatch per agency.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Parties, purchase

PATHS = {"order": "/api/v1/orders", "payment": "/api/v1/payments", "waybill": "/api/v1/waybills"}
KEYS = {
    "order": ("ebpCode", "orderNo"),
    "payment": ("payCode", "payTransactionId"),
    "waybill": ("logisticsCode", "logisticsNo"),
}


@dataclass(frozen=True)
class Answer:
    doc: tuple[str, str, str]  # doc type, owner code, business no
    sent: float  # time.monotonic()
    received: float
    outcome: str  # the HTTP status, "cut" (connection refused / reset / closed) or "timeout"
    code: str | None = None  # problem+json code of a 4xx/5xx
    content_type: str = ""


@dataclass
class Load:
    base: str
    parties: Parties
    concurrency: int = 8
    retry_pause_s: float = 0.05
    timeout_s: float = 30.0
    answers: list[Answer] = field(default_factory=list)
    acked: dict[tuple[str, str, str], int] = field(default_factory=dict)  # document → its first 2xx status
    purchases: list[tuple[str, str]] = field(default_factory=list)  # (ebpCode, orderNo) all three acknowledged
    replayed_after_cut: int = 0  # a 2xx replay after a cut or a 503: it had been committed, the answer lost
    refused: list[str] = field(default_factory=list)  # an unexpected 4xx: the document given up

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.base, timeout=self.timeout_s, limits=limits) as http:
            await asyncio.gather(*(self._client(http, stop) for _ in range(self.concurrency)))

    async def _client(self, http: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            order, payment, waybill = purchase(own_buyer=True)
            sent = [
                await self._post(http, "order", order, self.parties.platform),
                await self._post(http, "payment", payment, self.parties.payment),
                await self._post(http, "waybill", waybill, self.parties.logistics),
            ]
            if all(sent):
                self.purchases.append((order["ebpCode"], order["orderNo"]))

    async def _post(
        self, http: httpx.AsyncClient, doc_type: str, body: dict[str, Any], headers: dict[str, str]
    ) -> bool:
        owner, number = KEYS[doc_type]
        doc = (doc_type, str(body[owner]), str(body[number]))
        failed_before = False
        while True:
            sent = time.monotonic()
            try:
                response = await http.post(PATHS[doc_type], json=body, headers=headers)
            except httpx.TimeoutException:
                self.answers.append(Answer(doc, sent, time.monotonic(), "timeout"))
            except httpx.TransportError:
                self.answers.append(Answer(doc, sent, time.monotonic(), "cut"))
            else:
                content_type = response.headers.get("content-type", "")
                code = response.json().get("code") if "json" in content_type and response.status_code >= 400 else None
                self.answers.append(Answer(doc, sent, time.monotonic(), str(response.status_code), code, content_type))
                if response.is_success:
                    self.acked.setdefault(doc, response.status_code)
                    if failed_before and response.headers.get("idempotent-replayed") == "true":
                        self.replayed_after_cut += 1
                    return True
                if response.status_code < 500 and response.status_code != 429:
                    self.refused.append(f"{doc}: {response.status_code} {response.text[:300]}")
                    return False
            failed_before = True
            await asyncio.sleep(self.retry_pause_s)

    def outcomes(self) -> Counter[str]:
        return Counter(a.outcome for a in self.answers)


@dataclass
class StoredState:
    documents: int = 0
    lost: list[str] = field(default_factory=list)  # acknowledged, not in the database
    duplicate_documents: list[str] = field(default_factory=list)
    duplicate_records: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # a complete purchase without its one declared record
    partial: list[str] = field(default_factory=list)  # a stored document or record missing a part of its write

    def assert_clean(self) -> None:
        assert not self.lost, f"acknowledged but not stored: {self.lost[:5]}"
        assert not self.duplicate_documents, f"stored twice: {self.duplicate_documents[:5]}"
        assert not self.duplicate_records, f"two records for one purchase: {self.duplicate_records[:5]}"
        assert not self.unmatched, f"complete purchases without their record: {self.unmatched[:5]}"
        assert not self.partial, f"partial writes: {self.partial[:5]}"


async def stored_state(engine: AsyncEngine, load: Load, agencies: int = 4) -> StoredState:
    state = StoredState()
    async with engine.connect() as conn:
        documents = (
            await conn.execute(
                text(
                    "SELECT d.doc_type, d.owner_code, d.business_no, count(*) OVER w AS n, d.record_id, "
                    "EXISTS (SELECT 1 FROM raw_message m WHERE m.id = d.raw_message_id) AS raw, "
                    "EXISTS (SELECT 1 FROM record_event e WHERE e.document_id = d.id "
                    "AND e.kind = 'document_received') AS audited "
                    "FROM document d WINDOW w AS (PARTITION BY d.doc_type, d.owner_code, d.business_no)"
                )
            )
        ).all()
        records = (
            await conn.execute(
                text(
                    "SELECT r.id, r.ebp_code, r.order_no, r.status, count(*) OVER w AS n, "
                    "(SELECT count(*) FROM document d WHERE d.record_id = r.id) AS docs, "
                    "EXISTS (SELECT 1 FROM declaration x WHERE x.record_id = r.id) AS declared, "
                    "(SELECT count(*) FROM dispatch s WHERE s.record_id = r.id) AS dispatches "
                    "FROM match_record r WINDOW w AS (PARTITION BY r.ebp_code, r.order_no)"
                )
            )
        ).all()
    state.documents = len(documents)
    stored = {(d.doc_type, d.owner_code, d.business_no) for d in documents}
    state.lost = [str(doc) for doc in load.acked if doc not in stored]
    state.duplicate_documents = [f"{d.doc_type} {d.business_no}" for d in documents if d.n > 1]
    state.partial = [f"{d.doc_type} {d.business_no}: raw {d.raw}, audited {d.audited}" for d in documents
                     if not (d.raw and d.audited)]  # fmt: skip
    state.duplicate_records = [f"{r.ebp_code} {r.order_no}" for r in records if r.n > 1]
    by_purchase = {(r.ebp_code, r.order_no): r for r in records}
    for purchase_key in load.purchases:
        record = by_purchase.get(purchase_key)
        if record is None or record.status in ("AWAITING_DOCUMENTS", "MISMATCHED"):
            state.unmatched.append(str(purchase_key))
        elif not (record.docs == 3 and record.declared and record.dispatches == agencies):
            state.partial.append(
                f"record {record.order_no} {record.status}: {record.docs} documents, declared {record.declared}, "
                f"{record.dispatches} dispatches"
            )
    return state
