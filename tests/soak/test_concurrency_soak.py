"""Concurrency at soak sizes, on PostgreSQL: concurrent requests over the app's connection pool (each request its
own connection and transaction, committed data), repeated runs, then checked through the API and the outbox.

The normal suite (tests/test_concurrency.py) runs each race a few times; here each runs ×20 (quick ×3), the
shuffled purchases are 1,000 (quick 100), and 8 dispatchers — each with its own engine and connections — drain
1,000 dispatches (quick 150) to the in-process mock agencies.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.models import Dispatch, DispatchAttempt
from app.worker import Dispatcher
from tests.conftest import ADMIN, serving, soak_level
from tests.factories import Parties, file_parties, purchase, resident_id
from tests.figures import record_figure
from tests.test_concurrency import DOC_TYPES, PATHS, _records, _sender
from tests.test_declaration import priced

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(1800)]

FULL = soak_level() == "full"
RUNS = 20 if FULL else 3
PURCHASES = 1_000 if FULL else 100
DISPATCHES = 1_000 if FULL else 150
AGENCIES = ("customs", "inspection", "tax", "fx")
CLIENTS = 32
WORKERS = 8


async def _gather(requests: list[Awaitable[httpx.Response]]) -> tuple[list[httpx.Response], int]:
    """Every answer, and how many requests failed: a 5xx, or an exception the app let out."""
    outcomes = await asyncio.gather(*requests, return_exceptions=True)
    answers = [o for o in outcomes if isinstance(o, httpx.Response)]
    failed = sum(isinstance(o, BaseException) for o in outcomes) + sum(r.status_code >= 500 for r in answers)
    return answers, failed


async def _bounded(
    limit: int, calls: list[Callable[[], Awaitable[httpx.Response]]]
) -> tuple[list[httpx.Response], int]:
    semaphore = asyncio.Semaphore(limit)

    async def run(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        async with semaphore:
            return await call()

    return await _gather([run(call) for call in calls])


async def _document_version(client: httpx.AsyncClient, doc_type: str, document: dict[str, Any]) -> int:
    owner, number = {
        "order": ("ebpCode", "orderNo"),
        "payment": ("payCode", "payTransactionId"),
        "waybill": ("logisticsCode", "logisticsNo"),
    }[doc_type]
    response = await client.get(f"{PATHS[doc_type]}/{document[owner]}/{document[number]}", headers=ADMIN)
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


async def _dispatches_per_agency(app: FastAPI, record_id: str) -> Counter[str]:
    async with app.state.sessionmaker() as session:
        agencies = await session.scalars(select(Dispatch.agency).where(Dispatch.record_id == record_id))
        return Counter(agencies)


async def test_fifty_identical_posts_store_one_document(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    stored, server_errors = Counter[int](), 0
    for _ in range(RUNS):
        order = purchase()[0] | {"guid": "8D1B4C2E-0C4B-4A55-9C1D-6B2B2F7E0A11", "appTime": "20261123101500"}
        answers, failed = await _gather(
            [client.post(PATHS["order"], json=order, headers=parties.platform) for _ in range(50)]
        )
        server_errors += failed
        assert failed == 0
        assert Counter(r.status_code for r in answers) == {201: 1, 200: 49}
        assert len({r.json()["recordId"] for r in answers}) == 1
        assert await _document_version(client, "order", order) == 1
        records = await _records(client, orderNo=order["orderNo"])
        stored[len(records)] += 1
        assert len(records) == 1
    record_figure(
        f"same document posted 50× concurrently, ×{RUNS} runs",
        f"stored per run: 1 in {stored[1]}/{RUNS} runs; 5xx {server_errors}",
        "exactly 1; 0",
    )


async def test_twenty_transport_variants_store_one_document(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    single = 0
    for run in range(RUNS):
        order = purchase()[0]
        variants = [
            order | {"guid": f"8D1B4C2E-0C4B-4A55-{run:04d}-{n:012d}", "appTime": f"202611231015{n:02d}"}
            for n in range(20)
        ]
        answers, failed = await _gather(
            [client.post(PATHS["order"], json=body, headers=parties.platform) for body in variants]
        )
        assert failed == 0
        assert Counter(r.status_code for r in answers) == {201: 1, 200: 19}
        [created] = [r.json() for r in answers if r.status_code == 201]
        assert {r.json()["guid"] for r in answers} == {created["guid"]}  # every replay shows the stored one
        assert await _document_version(client, "order", order) == 1
        assert len(await _records(client, orderNo=order["orderNo"])) == 1
        single += 1
    record_figure(
        f"same document, 20 different guid/appTime, concurrently, ×{RUNS} runs",
        f"documents stored per run: 1 in {single}/{RUNS} runs; 5xx 0",
        "exactly 1",
    )


async def test_triple_in_every_order_matches_once_and_dispatches_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triples = 0
    for _ in range(RUNS):
        for start_order in itertools.permutations(DOC_TYPES):
            documents = dict(zip(DOC_TYPES, purchase(own_buyer=True), strict=True))
            answers, failed = await _gather(
                [
                    client.post(PATHS[doc_type], json=documents[doc_type], headers=_sender(parties, doc_type))
                    for doc_type in start_order
                ]
            )
            assert failed == 0
            assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
            [record] = await _records(client, orderNo=documents["order"]["orderNo"])
            assert record["status"] == "DECLARED", record
            assert await _dispatches_per_agency(app, record["id"]) == dict.fromkeys(AGENCIES, 1)
            triples += 1
    record_figure(
        f"order/payment/waybill posted concurrently, 6 orders ×{RUNS} runs",
        f"{triples} triples: records per triple 1 ({triples}/{triples}); dispatches per agency 1",
        "1; 1",
    )


async def _post_purchases(
    client: httpx.AsyncClient, parties: Parties, count: int, seed: int
) -> tuple[list[tuple[dict[str, Any], ...]], list[httpx.Response], int]:
    purchases = [purchase(own_buyer=True) for _ in range(count)]
    posts = [(doc_type, doc) for triple in purchases for doc_type, doc in zip(DOC_TYPES, triple, strict=True)]
    random.Random(seed).shuffle(posts)

    def call(doc_type: str, document: dict[str, Any]) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: client.post(PATHS[doc_type], json=document, headers=_sender(parties, doc_type))

    answers, failed = await _bounded(CLIENTS, [call(doc_type, document) for doc_type, document in posts])
    return purchases, answers, failed


async def test_shuffled_purchases_from_many_clients_all_match(app: FastAPI, client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    started = time.perf_counter()
    purchases, answers, failed = await _post_purchases(client, parties, PURCHASES, seed=20261123)
    elapsed = time.perf_counter() - started
    assert failed == 0
    assert Counter(r.status_code for r in answers) == {201: 3 * PURCHASES}
    records = await _records(client)
    assert len(records) == len({r["id"] for r in records}) == PURCHASES, Counter(r["status"] for r in records)
    assert {r["orderNo"] for r in records} == {triple[0]["orderNo"] for triple in purchases}
    assert Counter(r["status"] for r in records) == {"DECLARED": PURCHASES}
    async with app.state.sessionmaker() as session:
        per_record = Counter(
            (row.record_id, row.agency) for row in await session.execute(select(Dispatch.record_id, Dispatch.agency))
        )
    assert len(per_record) == PURCHASES * len(AGENCIES)
    assert set(per_record.values()) == {1}
    record_figure(
        f"{PURCHASES:,} purchases, documents shuffled, {CLIENTS} concurrent clients",
        f"records {len(records):,}; declared {PURCHASES:,}/{PURCHASES:,}; duplicates 0; 5xx {failed}; "
        f"{3 * PURCHASES / elapsed:.0f} documents/s",
        f"{PURCHASES:,}; all matched; 0; 0",
    )


@pytest.fixture
async def dispatch_world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its mock agencies, none of which samples for inspection (no callbacks to wait for)."""
    async with serving(settings, client_timeout_s=120, supervision_rate_regular=0.0) as world:
        yield world


async def _drain(worker: Dispatcher, open_rows: Callable[[], Awaitable[int]]) -> int:
    """Run one dispatcher until the outbox is empty; the number of dispatches it claimed."""
    claimed = 0
    while True:
        batch = await worker.run_once()
        claimed += batch
        if not batch:
            if not await open_rows():
                return claimed
            await asyncio.sleep(0.01)


async def test_eight_dispatchers_deliver_each_dispatch_once(
    dispatch_world: tuple[FastAPI, httpx.AsyncClient], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app, client = dispatch_world
    parties = await file_parties(client)
    purchases = -(-DISPATCHES // len(AGENCIES))
    _, answers, failed = await _post_purchases(client, parties, purchases, seed=8)
    assert failed == 0
    assert {r.status_code for r in answers} == {201}
    async with app.state.sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(Dispatch))
    assert total == purchases * len(AGENCIES)

    # Each dispatcher its own engine: its own pool of connections (small, so eight fit the server).
    worker_settings = settings.model_copy(update={"db_pool_size": 2, "db_max_overflow": 1, "dispatch_batch_size": 16})
    engines = [create_engine(worker_settings) for _ in range(WORKERS)]

    async def open_rows() -> int:
        async with app.state.sessionmaker() as session:
            due = Dispatch.status.in_(("pending", "retry", "in_flight"))
            return int(await session.scalar(select(func.count()).select_from(Dispatch).where(due)) or 0)

    caplog.set_level(logging.INFO, logger="app")
    caplog.clear()
    started = time.perf_counter()
    try:
        workers = [
            Dispatcher(engine, create_sessionmaker(engine), worker_settings, app.state.adapters) for engine in engines
        ]
        claimed = await asyncio.wait_for(asyncio.gather(*(_drain(w, open_rows) for w in workers)), timeout=240)
    finally:
        for engine in engines:
            await engine.dispose()
    elapsed = time.perf_counter() - started

    async with app.state.sessionmaker() as session:
        statuses = Counter(await session.scalars(select(Dispatch.status)))
        attempts = Counter(
            (row.dispatch_id, row.outcome)
            for row in await session.execute(select(DispatchAttempt.dispatch_id, DispatchAttempt.outcome))
        )
        dispatch_ids = {
            a: {str(i) for i in await session.scalars(select(Dispatch.id).where(Dispatch.agency == a))}
            for a in AGENCIES
        }
    assert statuses == {"delivered": total}
    assert len(attempts) == total
    assert set(attempts.values()) == {1}
    assert {outcome for _, outcome in attempts} == {"delivered"}
    raw = 0
    for agency in AGENCIES:
        stats = (await client.get(f"/mock/{agency}/stats")).json()
        answered = (await client.get(f"/mock/{agency}/answers")).json()
        assert {a["idempotencyKey"] for a in answered} == dispatch_ids[agency]  # each dispatch acted on
        assert Counter(a["recordId"] for a in answered).most_common(1)[0][1] == 1  # one key per declaration
        assert (stats["answered"], stats["replays"]) == (purchases, 0), stats  # sent once each
        assert stats["requests"] == stats["batchRequests"], stats  # in batches
        raw += stats["requests"]
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or "retry" in r.getMessage()]
    assert problems == [], [r.getMessage() for r in problems[:5]]
    assert sum(claimed) == total
    record_figure(
        f"{WORKERS} dispatchers (own connections) draining {total:,} dispatches",
        f"delivered once {total:,}/{total:,}; agency calls {raw:,} (batches), replays 0; deadlocks, lock "
        f"timeouts and retried transactions 0; claims per worker {min(claimed)}-{max(claimed)}; "
        f"{total / elapsed:.0f} dispatches/s",
        "each exactly once; no deadlock",
    )


async def test_two_purchases_near_the_annual_quota_declared_at_once(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    held = 0
    for run in range(RUNS):
        buyer = resident_id(7_000_000 + run)  # a buyer of its own per run, with a valid check digit
        # 20,000 of the 26,000 used: 3,000.01 more fits once, not twice.
        for _ in range(4):
            posted = [
                await client.post(PATHS[t], json=d, headers=_sender(parties, t))
                for t, d in zip(DOC_TYPES, priced("5000.00", buyer), strict=True)
            ]
            assert posted[-1].json()["recordStatus"] == "DECLARED", posted[-1].text
        first, second = priced("3000.01", buyer), priced("3000.01", buyer)
        posts = [(t, d) for triple in (first, second) for t, d in zip(DOC_TYPES, triple, strict=True)]
        random.Random(run).shuffle(posts)
        answers, failed = await _gather([client.post(PATHS[t], json=d, headers=_sender(parties, t)) for t, d in posts])
        assert failed == 0
        assert {r.status_code for r in answers} == {201}
        outcomes = []
        for triple in (first, second):
            [record] = await _records(client, orderNo=triple[0]["orderNo"])
            detail = (await client.get(f"/api/v1/records/{record['id']}", headers=ADMIN)).json()
            rejection = detail.get("rejection") or {}
            outcomes.append((detail["status"], rejection.get("code"), rejection.get("cebReturnStatus")))
        assert sorted(outcomes) == [("DECLARED", None, None), ("REJECTED", "ANNUAL_QUOTA_EXCEEDED", "-621018")], (
            outcomes
        )
        held += 1
    record_figure(
        f"two purchases of one buyer completing at once near the annual quota, ×{RUNS} runs",
        f"quota held in {held}/{RUNS} runs: 1 declared, 1 rejected (-621018 ANNUAL_QUOTA_EXCEEDED)",
        "the quota holds",
    )
