"""The database goes away for a moment: fast checks of what tests/soak/test_db_restart.py shows under load.

- Through the HTTP app: a request whose database is unreachable (a refused connection, a server that answers
  "starting up", "too many clients", "not accepting connections") answers 503 problem+json
  ``DATABASE_UNAVAILABLE`` and stores nothing; a statement that fails (a bug, e.g. a table that is not there)
  is still a 500, never hidden behind "retry later".
- The dispatcher: our database failing while it prepares a dispatch (or an adapter failing at the socket) sends
  the dispatch to ``retry``, never to the dead letters.
- ``run_in_transaction(..., idempotent=True)`` runs a unit of work again once after its connection was lost.
- PostgreSQL: the dispatcher LISTENs again after its listening connection was terminated.

The faults are real where that is practical: an engine pointed at a closed port or an unopenable file, a
fake PostgreSQL server at the far end of a TCP connection, backends of *this test's database* terminated.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.config import Settings
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.models import Dispatch, DispatchAttempt, Enterprise
from app.services.dispatch import claim_due, deliver
from app.worker import Dispatcher
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.live import free_port

UNAVAILABLE = "DATABASE_UNAVAILABLE"


# --- faults at the edge --------------------------------------------------------------------------------


def refused_url() -> str:
    """A PostgreSQL URL on a port nobody listens on: connecting raises ConnectionRefusedError (an OSError)."""
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/sw_nowhere"


def unopenable_url(tmp_path: Path) -> str:
    """A SQLite database in a directory that does not exist: sqlite3 raises OperationalError on connect."""
    return f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'sw.db'}"


def unreachable_url(database_url: str, tmp_path: Path) -> str:
    """The test database's own kind of unreachable."""
    return refused_url() if database_url.startswith("postgresql") else unopenable_url(tmp_path)


class FakePostgres:
    """A TCP server that speaks just enough of the PostgreSQL protocol to refuse a session the way a real
    server does: it answers the startup message with an ErrorResponse (severity FATAL, the given SQLSTATE)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        self.sqlstate, self.message = sqlstate, message
        self.sessions = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/sw_fake"

    async def __aenter__(self) -> FakePostgres:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if code == 80877103:  # SSLRequest: "no SSL here", then the startup message
                writer.write(b"N")
                (length,) = struct.unpack("!i", await reader.readexactly(4))
                await reader.readexactly(length - 4)
            else:
                await reader.readexactly(length - 8)
            fields = b"".join(
                kind + value.encode() + b"\0"
                for kind, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", self.sqlstate), (b"M", self.message))
            )
            writer.write(b"E" + struct.pack("!i", len(fields) + 5) + fields + b"\0")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving_from(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[None]:
    """The app uses ``engine`` for the requests made meanwhile, then its own again."""
    own = app.state.engine, app.state.sessionmaker
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    try:
        yield
    finally:
        app.state.engine, app.state.sessionmaker = own
        await engine.dispose()


def engine_at(app: FastAPI, url: str) -> AsyncEngine:
    """An engine for ``url`` built the way the app builds its own."""
    settings: Settings = app.state.settings
    return create_engine(settings.model_copy(update={"database_url": url}))


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def post_order(client: httpx.AsyncClient, parties: Parties, order: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/v1/orders", json=order, headers=parties.platform)


async def stored_order(client: httpx.AsyncClient, order: dict[str, Any]) -> int:
    response = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=ADMIN)
    return response.status_code


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == UNAVAILABLE


@pytest.fixture
async def lenient_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 a server would send, instead of the app's exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


# --- (a) through the HTTP app ------------------------------------------------------------------------


async def test_a_refused_connection_is_503_and_nothing_is_stored(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    parties = await file_parties(client)
    order = purchase()[0]
    async with serving_from(app, engine_at(app, unreachable_url(database_url, tmp_path))):
        assert_unavailable(await post_order(client, parties, order))
        assert_unavailable(await client.get("/api/v1/records", headers=parties.platform))
    assert await stored_order(client, order) == 404
    again = await post_order(client, parties, order)  # the client's retry, once the database is back
    assert again.status_code == 201, again.text
    assert again.json()["replayed"] is False


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("57P03", "the database system is starting up"),
        ("57P01", "terminating connection due to administrator command"),
        ("53300", "sorry, too many clients already"),
        ("55000", 'database "sw_fake" is not currently accepting connections'),
        ("08004", "the server rejected the connection"),
    ],
)
async def test_a_server_refusing_the_session_is_503(
    app: FastAPI, client: httpx.AsyncClient, sqlstate: str, message: str
) -> None:
    parties = await file_parties(client)
    order = purchase()[0]
    async with FakePostgres(sqlstate, message) as server, serving_from(app, engine_at(app, server.url)):
        assert_unavailable(await post_order(client, parties, order))
    assert server.sessions >= 1  # the refusal really came from the far end of a connection
    assert await stored_order(client, order) == 404


async def test_a_server_refusing_a_wrong_password_is_not_a_retry_later(
    app: FastAPI, client: httpx.AsyncClient, lenient_client: httpx.AsyncClient
) -> None:
    """Retrying does not mend a misconfiguration: a 500, like any bug."""
    parties = await file_parties(client)
    failed = 'password authentication failed for user "postgres"'
    async with FakePostgres("28P01", failed) as server, serving_from(app, engine_at(app, server.url)):
        response = await post_order(lenient_client, parties, purchase()[0])
    assert server.sessions >= 1
    assert response.status_code == 500, response.text


async def test_a_failing_statement_is_still_500(
    app: FastAPI, client: httpx.AsyncClient, lenient_client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """The database answers, but the statement fails — here because the schema is not there (an unmigrated
    database; on PostgreSQL, a search_path without our tables): a bug to fix, not an outage to wait out."""
    parties = await file_parties(client)
    order = purchase()[0]
    if database_url.startswith("postgresql"):
        engine = create_async_engine(
            database_url, connect_args={"server_settings": {"search_path": "sw_no_such_schema"}}
        )
    else:
        engine = engine_at(app, f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    async with serving_from(app, engine):
        response = await post_order(lenient_client, parties, order)
        listed = await lenient_client.get("/api/v1/records", headers=parties.platform)
    assert (response.status_code, listed.status_code) == (500, 500), (response.text, listed.text)
    assert await stored_order(client, order) == 404


@pytest.mark.postgres_only
async def test_an_acceptance_whose_session_is_terminated_mid_transaction_runs_again_once_then_is_503(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """The acceptance holds its transaction open, waiting for the submission log that this test locks, and
    the test terminates that backend — what a restart does to a session mid-transaction. Accepting is
    idempotent: it runs again once, on a fresh connection, and stores the order once; terminated again, it
    answers 503 and stores nothing."""
    parties = await file_parties(client)
    once, twice = purchase()[0], purchase()[0]
    responses: dict[int, httpx.Response] = {}
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for order, terminations in ((once, 1), (twice, 2)):
            locked = admin.transaction()
            await locked.start()
            await admin.execute("LOCK TABLE submission IN SHARE MODE")  # inserts wait, reads go on
            posting = asyncio.create_task(post_order(client, parties, order))
            pid = None
            for _ in range(terminations):
                pid = await _backend_waiting_on_lock(admin, posting, "relation", other_than=pid)
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            if terminations == 1:
                await _backend_waiting_on_lock(admin, posting, "relation", other_than=pid)  # the second run
            await locked.rollback()
            responses[terminations] = await asyncio.wait_for(posting, 30)
    finally:
        await admin.close()
    assert responses[1].status_code == 201, responses[1].text
    assert responses[1].json()["replayed"] is False
    assert (await post_order(client, parties, once)).json()["replayed"] is True  # stored once
    assert_unavailable(responses[2])
    assert await stored_order(client, twice) == 404


@pytest.mark.postgres_only
async def test_a_matcher_whose_session_is_terminated_mid_round_processes_the_document_once(
    app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    """The matcher's round waits for the order-number lock that this test holds, and the test terminates its
    backend: the round is rolled back, the matcher goes on after a pause, and the order is stored once."""
    parties = await file_parties(client)
    order = purchase()[0]
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", order["orderNo"])  # ORDER_LOCKS
        posting = asyncio.create_task(post_order(client, parties, order))
        pid = await _backend_waiting_on_lock(admin, posting, "advisory", other_than=None)
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await _backend_waiting_on_lock(admin, posting, "advisory", other_than=pid)  # the next round
        await admin.execute("SELECT pg_advisory_unlock_all()")
        response = await asyncio.wait_for(posting, 30)
    finally:
        await admin.close()
    assert response.status_code == 201, response.text
    assert (await post_order(client, parties, order)).json()["replayed"] is True
    listed = await client.get("/api/v1/admin/submissions", headers=ADMIN)
    assert [item["outcome"] for item in listed.json()["items"]] == ["stored"]


async def _backend_waiting_on_lock(
    admin: asyncpg.Connection, request: asyncio.Task[Any], wait_event: str, other_than: int | None
) -> int:
    """The backend of this database that waits for a lock of this kind (the request's, or its matcher's)."""
    deadline = time.monotonic() + 10
    while True:
        # Inside the admin's transaction the statistics views are a snapshot taken at the first read: drop it.
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' AND wait_event = $2 AND pid IS DISTINCT FROM $1",
            other_than,
            wait_event,
        )
        if pid is not None:
            return int(pid)
        assert not request.done(), request.result().text
        assert time.monotonic() < deadline, f"nothing waits for the {wait_event} lock"
        await asyncio.sleep(0.01)


# --- (b) the dispatcher ------------------------------------------------------------------------------


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its mock agencies, fast callbacks and a tiny backoff (as in tests/test_dispatch.py)."""
    async with _app(settings, supervision_rate_regular=0.0, mock_inspection_delay_ms=10) as pair:
        yield pair


def _app(settings: Settings, **overrides: Any) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its mock agencies and a tiny backoff."""
    return serving(settings, dispatch_backoff_base_s=0.001, dispatch_backoff_cap_s=0.01, **overrides)


def dispatcher(app: FastAPI) -> Dispatcher:
    return Dispatcher(app.state.engine, app.state.sessionmaker, app.state.settings, app.state.adapters)


async def drain(app: FastAPI) -> None:
    """Run the dispatcher until nothing is open (due retries come after a backoff of milliseconds)."""
    worker = dispatcher(app)
    deadline = time.monotonic() + 20
    while True:
        claimed = await worker.run_once()
        await app.state.mock_agencies.wait_for_callbacks()
        async with app.state.sessionmaker() as session:
            open_ = await session.scalar(
                select(func.count()).select_from(Dispatch).where(Dispatch.status.in_(("pending", "retry", "in_flight")))
            )
        if not claimed and not open_:
            return
        assert time.monotonic() < deadline, "the outbox did not drain"
        if not claimed:
            await asyncio.sleep(0.01)


async def dispatch_of(app: FastAPI, agency: str) -> tuple[Dispatch, list[DispatchAttempt]]:
    async with app.state.sessionmaker() as session:
        row = await session.scalar(select(Dispatch).where(Dispatch.agency == agency))
        assert row is not None
        attempts = list(
            await session.scalars(
                select(DispatchAttempt)
                .where(DispatchAttempt.dispatch_id == row.id)
                .order_by(DispatchAttempt.attempt_no)
            )
        )
    return row, attempts


class FirstSessionFrom:
    """A sessionmaker whose first session is bound to another (unreachable) engine: the database is gone when
    the dispatch's package is read, and back when its outcome is recorded."""

    def __init__(self, engine: AsyncEngine, then: Any) -> None:
        self.engine, self.then, self.calls = engine, then, 0

    def __call__(self) -> AsyncSession:
        self.calls += 1
        return AsyncSession(self.engine, expire_on_commit=False) if self.calls == 1 else self.then()


@pytest.mark.parametrize("fault", ["refused", "unopenable"])
async def test_database_lost_while_reading_the_package_sends_the_dispatch_to_retry(
    world: tuple[FastAPI, httpx.AsyncClient], tmp_path: Path, fault: str
) -> None:
    app, client = world
    parties = await file_parties(client)
    receipt = (await _post_triple(client, parties))[-1].json()
    claims = await claim_due(app.state.sessionmaker, app.state.settings)
    customs = next(c for c in claims if c.agency == "customs")
    for other in claims:
        if other is not customs:
            assert await deliver(app.state.sessionmaker, app.state.settings, app.state.adapters, other) == "delivered"
    gone = create_async_engine(refused_url() if fault == "refused" else unopenable_url(tmp_path))
    try:
        flaky = FirstSessionFrom(gone, app.state.sessionmaker)
        outcome = await deliver(flaky, app.state.settings, app.state.adapters, customs)  # type: ignore[arg-type]
    finally:
        await gone.dispose()
    assert outcome == "retry"
    row, attempts = await dispatch_of(app, "customs")
    assert (row.status, row.attempts) == ("retry", 1)
    assert (row.last_error or "").startswith("database: ")
    assert [(a.attempt_no, a.outcome) for a in attempts] == [(1, "retry")]
    assert (await client.get("/mock/customs/stats")).json()["requests"] == 0  # nothing was sent

    await drain(app)
    row, attempts = await dispatch_of(app, "customs")
    assert (row.status, row.attempts) == ("delivered", 2)
    assert [a.outcome for a in attempts] == ["retry", "delivered"]
    record = (await client.get(f"/api/v1/records/{receipt['recordId']}", headers=ADMIN)).json()
    assert record["status"] == "CLEARED", record
    assert record["agencies"]["customs"]["status"] != "dead"


class SocketFailsOnce:
    """An adapter whose first call fails at the socket (an OSError, not an agency answer), then the real one."""

    def __init__(self, real: Any) -> None:
        self.real, self.name, self.calls = real, real.name, 0

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionResetError(104, "Connection reset by peer")
        return await self.real.submit(package, dispatch_id)


async def test_an_adapter_failing_at_the_socket_retries_instead_of_dead_lettering(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = world
    app.state.adapters["fx"] = SocketFailsOnce(app.state.adapters["fx"])
    parties = await file_parties(client)
    await _post_triple(client, parties)
    assert await dispatcher(app).run_once() == 4
    row, attempts = await dispatch_of(app, "fx")
    assert (row.status, [a.outcome for a in attempts]) == ("retry", ["retry"])
    assert "ConnectionResetError" in (row.last_error or "")
    await drain(app)
    row, attempts = await dispatch_of(app, "fx")
    assert (row.status, row.attempts, [a.outcome for a in attempts]) == ("delivered", 2, ["retry", "delivered"])
    assert (await client.get("/mock/fx/stats")).json()["answered"] == 1


async def _post_triple(client: httpx.AsyncClient, parties: Parties) -> list[httpx.Response]:
    responses = await post_triple(client, parties, purchase())
    assert responses[-1].json()["recordStatus"] == "DECLARED", responses[-1].text
    return list(responses)


# --- (c) run_in_transaction: a lost connection is retried once, for idempotent work only -----------------


def lost_connection() -> DBAPIError:
    """What SQLAlchemy raises when the connection under a statement turned out to be dead."""
    return DBAPIError(
        "INSERT INTO enterprise …",
        {},
        ConnectionResetError(104, "Connection reset by peer"),
        connection_invalidated=True,
    )


class FailsOnce:
    """A unit of work on a connection that dies (``failures`` times) after the work has written a row."""

    def __init__(self, code: str, failures: int = 1) -> None:
        self.code, self.failures, self.calls = code, failures, 0

    async def __call__(self, session: AsyncSession) -> str:
        self.calls += 1
        session.add(Enterprise(code=self.code, name=f"attempt {self.calls}", roles=["platform"]))
        await session.flush()
        if self.calls <= self.failures:
            raise lost_connection()
        return f"done on attempt {self.calls}"


async def names(app: FastAPI, code: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(Enterprise.name).where(Enterprise.code == code)))


async def test_idempotent_work_runs_again_after_a_lost_connection(app: FastAPI) -> None:
    work = FailsOnce("3120960R01")
    assert await run_in_transaction(app.state.sessionmaker, work, idempotent=True) == "done on attempt 2"
    assert await names(app, "3120960R01") == ["attempt 2"]  # the first attempt was rolled back


async def test_non_idempotent_work_is_not_run_again(app: FastAPI) -> None:
    work = FailsOnce("3120960R02")
    with pytest.raises(DBAPIError) as raised:
        await run_in_transaction(app.state.sessionmaker, work)
    assert raised.value.connection_invalidated
    assert work.calls == 1
    assert await names(app, "3120960R02") == []


async def test_idempotent_work_is_run_again_only_once(app: FastAPI) -> None:
    work = FailsOnce("3120960R03", failures=2)
    with pytest.raises(DBAPIError):
        await run_in_transaction(app.state.sessionmaker, work, idempotent=True)
    assert work.calls == 2
    assert await names(app, "3120960R03") == []


@pytest.mark.postgres_only
async def test_a_pooled_connection_whose_backend_was_terminated_is_replaced_for_idempotent_work(
    app: FastAPI, database_url: str
) -> None:
    """The real case behind the retry: no pre-ping, so a pooled connection that died with its backend (a
    restart) fails on first use; an idempotent unit of work runs again on a fresh one, others fail."""
    engine = engine_at(app, database_url)
    sessionmaker = create_sessionmaker(engine)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for idempotent, code in ((True, "3120960R04"), (False, "3120960R05")):
            async with engine.connect() as conn:  # the pool keeps this connection for the next checkout
                pid = await conn.scalar(select(func.pg_backend_pid()))
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            await _gone(admin, pid)
            work = FailsOnce(code, failures=0)
            if idempotent:
                assert await run_in_transaction(sessionmaker, work, idempotent=True) == "done on attempt 2"
                assert await names(app, code) == ["attempt 2"]
            else:
                with pytest.raises(DBAPIError) as raised:
                    await run_in_transaction(sessionmaker, work)
                assert raised.value.connection_invalidated
                assert (work.calls, await names(app, code)) == (1, [])
    finally:
        await admin.close()
        await engine.dispose()


async def _gone(admin: asyncpg.Connection, pid: int) -> None:
    deadline = time.monotonic() + 10
    while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline, f"backend {pid} did not end"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and its client saw the connection close


# --- the dispatcher's LISTEN after its connection was lost (PostgreSQL) ------------------------------------


async def _listener_pid(admin: asyncpg.Connection, other_than: int | None = None) -> int:
    """The backend of this database that LISTENs for dispatches (the dispatcher's listening connection)."""
    deadline = time.monotonic() + 10
    while True:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %'"
            " AND pid IS DISTINCT FROM $1",
            other_than,
        )
        if pid is not None:
            return int(pid)
        assert time.monotonic() < deadline, "the dispatcher is not listening"
        await asyncio.sleep(0.02)


@pytest.mark.postgres_only
async def test_dispatcher_listens_again_after_its_connection_is_terminated(settings: Settings) -> None:
    async with _app(settings, dispatch_poll_s=60.0, supervision_rate_regular=0.0) as (app, client):
        parties = await file_parties(client)
        worker = dispatcher(app)
        running = asyncio.create_task(worker.run())
        admin = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            first = await _listener_pid(admin)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
            await _listener_pid(admin, other_than=first)  # listening again, on a new connection
            # Idle until the poll in 60 s: only the NOTIFY of the declaring commit can wake it.
            receipt = (await _post_triple(client, parties))[-1].json()
            deadline = time.monotonic() + 10
            while (await client.get(f"/api/v1/records/{receipt['recordId']}", headers=ADMIN)).json()[
                "status"
            ] != "CLEARED":
                assert time.monotonic() < deadline, "the NOTIFY did not wake the dispatcher"
                await asyncio.sleep(0.05)
        finally:
            await admin.close()
            worker.stop()
            await asyncio.wait_for(running, timeout=10)


async def test_dispatcher_does_not_busy_loop_while_the_database_refuses_it(settings: Settings) -> None:
    """LISTEN is tried again with backoff (at once, after 0.5 s, 1 s, 2 s …), each try followed by one round:
    a handful of connection attempts in a second, where a busy loop would make thousands."""
    async with FakePostgres("57P03", "the database system is starting up") as server:
        down = settings.model_copy(update={"database_url": server.url, "dispatch_poll_s": 60.0})
        engine = create_engine(down)
        worker = Dispatcher(engine, create_sessionmaker(engine), down, {})
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(1.2)
        finally:
            worker.stop()
            await asyncio.wait_for(running, timeout=10)
            await engine.dispose()
    assert 1 <= server.sessions <= 8, server.sessions
