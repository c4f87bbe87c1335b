"""Batched dispatch through the real app: one agency call carries a batch of declarations, and each
declaration still gets its own outcome (delivered / retry / dead, its attempt row, its record)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, update

from app.config import Settings
from app.db import utcnow
from app.models import Declaration, Dispatch, DispatchAttempt
from app.services.dispatch import build_packages, claim_due, deliver_batch, reap_expired_leases
from tests.conftest import serving
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.test_dispatch import AGENCIES, detail, dispatcher, drain, stats


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(
        settings,
        supervision_rate_regular=0.0,
        dispatch_backoff_base_s=0.001,
        dispatch_backoff_cap_s=0.01,
    ) as pair:
        yield pair


async def declare(client: httpx.AsyncClient, parties: Parties, count: int) -> list[str]:
    receipts = [(await post_triple(client, parties, purchase(own_buyer=True)))[-1].json() for _ in range(count)]
    assert {r["recordStatus"] for r in receipts} == {"DECLARED"}
    return [r["recordId"] for r in receipts]


async def dispatches(app: FastAPI, agency: str | None = None) -> dict[str, Dispatch]:
    """Dispatches by record id (of one agency), or by dispatch id."""
    async with app.state.sessionmaker() as session:
        query = select(Dispatch)
        if agency is not None:
            query = query.where(Dispatch.agency == agency)
        rows = list(await session.scalars(query))
    return {str(d.record_id if agency else d.id): d for d in rows}


async def attempts(app: FastAPI) -> dict[uuid.UUID, list[tuple[str, int | None]]]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(DispatchAttempt).order_by(DispatchAttempt.attempt_no))
        found: dict[uuid.UUID, list[tuple[str, int | None]]] = {}
        for a in rows:
            found.setdefault(a.dispatch_id, []).append((a.outcome, a.http_status))
    return found


class AgencyEdge(httpx.AsyncBaseTransport):
    """One agency's transport, in front of the mock agencies of this app: counts the calls, and can fail a
    whole call (503) or one declaration's slot of a batch answer."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.calls: list[dict[str, Any]] = []
        self.fail_next_calls = 0
        self.item_status: dict[str, int] = {}  # dispatch id → the status its slot answers instead

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append({"path": request.url.path, "body": json.loads(request.content)})
        if self.fail_next_calls:
            self.fail_next_calls -= 1
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"title": "unavailable"})
        response = await self.inner.handle_async_request(request)
        body = json.loads(await response.aread())
        for result in body.get("results", []):
            key = result["dispatchId"]
            if (status := self.item_status.get(key)) is not None:
                result.clear()
                result.update(dispatchId=key, status=status, code="BUSY", retryAfter=0)
        return httpx.Response(response.status_code, json=body)


@pytest.fixture
async def fx_edge(world: tuple[FastAPI, httpx.AsyncClient]) -> AsyncIterator[AgencyEdge]:
    app, _ = world
    edge = AgencyEdge(app)
    adapter = app.state.adapters["fx"]
    original = adapter.client
    adapter.client = httpx.AsyncClient(transport=edge)
    try:
        yield edge
    finally:
        await adapter.client.aclose()
        adapter.client = original


async def test_a_batch_is_one_call_per_agency_and_each_declaration_gets_its_outcome(
    world: tuple[FastAPI, httpx.AsyncClient], fx_edge: AgencyEdge
) -> None:
    app, client = world
    parties = await file_parties(client)
    ids = await declare(client, parties, 6)
    assert await dispatcher(app).run_once() == 6 * len(AGENCIES)
    await app.state.mock_agencies.wait_for_callbacks()
    for agency in AGENCIES:
        counted = await stats(client, agency)
        assert (counted["requests"], counted["batchRequests"], counted["answered"]) == (1, 1, 6), counted
    [call] = fx_edge.calls
    assert call["path"] == "/mock/fx/declarations/batch"
    sent = {d["dispatchId"] for d in call["body"]["declarations"]}
    assert sent == {str(d.id) for d in (await dispatches(app, "fx")).values()}
    tried = await attempts(app)
    for row in (await dispatches(app)).values():
        assert (row.status, row.attempts) == ("delivered", 1)
        assert tried[row.id] == [("delivered", 200)]
    for record_id in ids:
        record = await detail(client, record_id)
        assert record["status"] == "CLEARED", record
        assert {a: record["agencies"][a]["status"] for a in AGENCIES} == dict.fromkeys(AGENCIES, "delivered")


async def test_batches_hold_at_most_the_configured_size(settings: Settings) -> None:
    async with serving(settings, supervision_rate_regular=0.0, dispatch_batch_size=4) as (app, client):
        parties = await file_parties(client)
        await declare(client, parties, 6)
        # Only fx is due: the round (4 per agency = 16) claims its 6, which must go in two calls.
        async with app.state.sessionmaker() as session, session.begin():
            later = utcnow() + timedelta(hours=1)
            await session.execute(update(Dispatch).where(Dispatch.agency != "fx").values(next_attempt_at=later))
        assert await dispatcher(app).run_once() == 6
        counted = await stats(client, "fx")
        assert (counted["batchRequests"], counted["answered"], counted["replays"]) == (2, 6, 0), counted


async def test_a_reaped_claim_cannot_record_its_late_outcome(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    await declare(client, parties, 2)
    claims = [c for c in await claim_due(app.state.sessionmaker, app.state.settings) if c.agency == "tax"]
    async with app.state.sessionmaker() as session, session.begin():  # the worker looks dead: reaped to retry
        await session.execute(update(Dispatch).values(lease_until=utcnow() - timedelta(seconds=1)))
    await reap_expired_leases(app.state.sessionmaker, app.state.settings.dispatch_max_attempts)
    outcomes = await deliver_batch(app.state.sessionmaker, app.state.settings, app.state.adapters, claims)
    assert outcomes == ["lost_lease", "lost_lease"]
    assert {(d.status, d.attempts) for d in (await dispatches(app, "tax")).values()} == {("retry", 1)}
    assert await attempts(app) == {}


async def test_a_declaration_whose_package_cannot_be_built_fails_alone(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = world
    parties = await file_parties(client)
    poison, *good = await declare(client, parties, 4)
    async with app.state.sessionmaker() as session, session.begin():
        declaration = await session.get(Declaration, uuid.UUID(poison))
        assert declaration is not None
        broken = {k: v for k, v in declaration.inventory.items() if k != "ebcCode"}
        await session.execute(
            update(Declaration).where(Declaration.record_id == declaration.record_id).values(inventory=broken)
        )
    await dispatcher(app).run_once()
    await app.state.mock_agencies.wait_for_callbacks()
    for agency in AGENCIES:
        rows = await dispatches(app, agency)
        assert rows[poison].status == "dead"
        assert "package cannot be built" in (rows[poison].last_error or "")
        assert {rows[r].status for r in good} == {"delivered"}
        counted = await stats(client, agency)
        assert (counted["batchRequests"], counted["answered"]) == (1, len(good))
    assert (await detail(client, poison))["agencies"]["fx"]["status"] == "dead"
    assert {(await detail(client, r))["status"] for r in good} == {"CLEARED"}


async def test_a_declaration_the_agency_refuses_fails_alone_and_the_batch_is_delivered(
    world: tuple[FastAPI, httpx.AsyncClient], fx_edge: AgencyEdge
) -> None:
    app, client = world
    parties = await file_parties(client)
    refused, retried, *good = await declare(client, parties, 5)
    fx = app.state.adapters["fx"]
    payload = fx.payload

    def without_record_id_for_one(package: dict[str, Any]) -> dict[str, Any]:
        sent: dict[str, Any] = payload(package)
        return {**sent, "recordId": ""} if package["recordId"] == refused else sent

    fx.payload = without_record_id_for_one  # the real mock agency answers 422 in that slot
    before = await dispatches(app, "fx")
    fx_edge.item_status[str(before[retried].id)] = 503
    sent_at = utcnow()
    await dispatcher(app).run_once()
    assert len(fx_edge.calls) == 1
    rows = await dispatches(app, "fx")
    tried = await attempts(app)
    # Each row of the one UPDATE that records the batch gets its own values, by its id.
    assert (rows[refused].status, tried[rows[refused].id]) == ("dead", [("dead", 422)])
    assert "MALFORMED_PACKAGE" in (rows[refused].last_error or "")
    assert rows[refused].next_attempt_at == before[refused].next_attempt_at  # dead: never due again
    assert rows[refused].delivered_at is None
    assert (rows[retried].status, tried[rows[retried].id]) == ("retry", [("retry", 503)])
    assert "BUSY" in (rows[retried].last_error or "")
    assert sent_at < rows[retried].next_attempt_at <= utcnow() + timedelta(seconds=0.01)  # the backoff's cap
    assert rows[retried].delivered_at is None
    assert {rows[r].status for r in good} == {"delivered"}
    assert all(rows[r].delivered_at is not None and rows[r].last_error is None for r in good)
    assert {rows[r].lease_until for r in (refused, retried, *good)} == {None}
    assert (await detail(client, refused))["agencies"]["fx"]["status"] == "dead"
    assert (await detail(client, good[0]))["status"] == "CLEARED"

    fx_edge.item_status.clear()
    await drain(app)
    rows = await dispatches(app, "fx")
    assert (rows[retried].status, rows[retried].attempts) == ("delivered", 2)
    assert rows[refused].status == "dead"  # permanent: not sent again
    assert [len(c["body"]["declarations"]) for c in fx_edge.calls] == [5, 1]


async def test_a_whole_call_failing_retries_every_declaration_of_it(
    world: tuple[FastAPI, httpx.AsyncClient], fx_edge: AgencyEdge
) -> None:
    app, client = world
    parties = await file_parties(client)
    ids = await declare(client, parties, 3)
    fx_edge.fail_next_calls = 1
    await dispatcher(app).run_once()
    rows = await dispatches(app, "fx")
    tried = await attempts(app)
    for record_id in ids:
        assert (rows[record_id].status, tried[rows[record_id].id]) == ("retry", [("retry", 503)])
    assert {d.status for d in (await dispatches(app, "customs")).values()} == {"delivered"}
    assert (await stats(client, "fx"))["answered"] == 0
    await drain(app)
    assert {d.status for d in (await dispatches(app, "fx")).values()} == {"delivered"}
    assert [len(c["body"]["declarations"]) for c in fx_edge.calls] == [3, 3]
    assert (await stats(client, "fx"))["answered"] == 3
    assert {(await detail(client, r))["status"] for r in ids} == {"CLEARED"}


class PerDeclarationOnly:
    """A third-party adapter written before batches: ``submit`` only."""

    def __init__(self, real: Any) -> None:
        self.real, self.name, self.keys = real, real.name, []

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> Any:
        self.keys.append(dispatch_id)
        return await self.real.submit(package, dispatch_id)


async def test_an_adapter_without_batches_gets_each_declaration_on_its_own(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = world
    legacy = PerDeclarationOnly(app.state.adapters["tax"])
    app.state.adapters["tax"] = legacy
    parties = await file_parties(client)
    ids = await declare(client, parties, 3)
    await dispatcher(app).run_once()
    await app.state.mock_agencies.wait_for_callbacks()
    tax = await stats(client, "tax")
    assert (tax["requests"], tax["batchRequests"], tax["answered"]) == (3, 0, 3)
    assert sorted(legacy.keys) == sorted(str(d.id) for d in (await dispatches(app, "tax")).values())
    assert (await stats(client, "fx"))["batchRequests"] == 1
    assert {(await detail(client, r))["status"] for r in ids} == {"CLEARED"}


async def test_recording_a_batch_takes_the_same_few_statements_whatever_its_size(
    world: tuple[FastAPI, httpx.AsyncClient], is_postgres: bool
) -> None:
    app, client = world
    parties = await file_parties(client)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split()).upper()
        # Left out: the embedded matcher looking for work meanwhile (its claim, and on SQLite the BEGIN IMMEDIATE
        # of its transaction); a BEGIN of the delivery itself is one whatever the batch size.
        if "FROM SUBMISSION" not in text and not text.startswith("BEGIN"):
            statements.append(text)

    counts = []
    for size in (2, 8):
        await declare(client, parties, size)
        claimed = await claim_due(app.state.sessionmaker, app.state.settings)
        async with app.state.sessionmaker() as session:
            packages = await build_packages(session, claimed, app.state.settings)
        claims = [c for c in claimed if c.agency == "fx"]
        assert len(claims) == size
        statements.clear()
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", seen)
        try:
            outcomes = await deliver_batch(
                app.state.sessionmaker, app.state.settings, app.state.adapters, claims, packages
            )
        finally:
            event.remove(app.state.engine.sync_engine, "before_cursor_execute", seen)
        assert outcomes == ["delivered"] * size
        assert sum(s.startswith("UPDATE DISPATCH ") for s in statements) == 1
        assert sum(s.startswith("INSERT INTO DISPATCH_ATTEMPT") for s in statements) == 1
        # SQLite: the ORM inserts timeline rows (autoincrement key) one by one; PostgreSQL batches them too.
        counts.append(sum(is_postgres or not s.startswith("INSERT INTO RECORD_EVENT") for s in statements))
        for agency in ("customs", "inspection", "tax"):  # the rest of the round
            others = [c for c in claimed if c.agency == agency]
            await deliver_batch(app.state.sessionmaker, app.state.settings, app.state.adapters, others, packages)
    assert counts[0] == counts[1]


async def test_a_round_records_every_agency_in_one_transaction(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    # The four agencies' calls carry the same declarations: recorded apart, their transactions queued on the same
    # records' locks. One round is one recording transaction: one attempt insert, one lock of the records.
    app, client = world
    parties = await file_parties(client)
    await declare(client, parties, 3)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await dispatcher(app).run_once() == 3 * len(AGENCIES)
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", seen)
    assert sum(s.startswith("INSERT INTO DISPATCH_ATTEMPT") for s in statements) == 1
    assert {d.status for d in (await dispatches(app)).values()} == {"delivered"}


async def test_a_batch_that_cannot_be_recorded_does_not_hold_up_the_others(
    world: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in recording one agency's answers (planted here) fails the round's transaction; each batch is then
    # recorded on its own: the other agencies' dispatches are delivered, the broken one's stay claimed until their
    # lease expires and the reaper hands them back.
    from app.services import dispatch_outcomes

    app, client = world
    parties = await file_parties(client)
    await declare(client, parties, 2)
    original = dispatch_outcomes.apply_receipts

    async def broken_for_fx(session: Any, record: Any, agency: str, *args: Any, **kwargs: Any) -> None:
        if agency == "fx":
            raise RuntimeError("planted: the fx answer cannot be recorded")
        await original(session, record, agency, *args, **kwargs)

    monkeypatch.setattr(dispatch_outcomes, "apply_receipts", broken_for_fx)
    assert await dispatcher(app).run_once() == 2 * len(AGENCIES)
    for agency in AGENCIES:
        statuses = {d.status for d in (await dispatches(app, agency)).values()}
        assert statuses == ({"in_flight"} if agency == "fx" else {"delivered"}), agency
