"""Test infrastructure: a real database (SQLite file, or PostgreSQL from SW_TEST_DATABASE_URL), migrated
once per session; every test talks to the real app over HTTP (httpx ASGI transport) and leaves committed
data behind that the next test's cleanup removes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from app.config import Settings
from app.main import create_app
from app.migrate import upgrade
from app.models import Base
from tests.service_keys import signing_settings

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"X-API-Key": ADMIN_TOKEN}
# Intake answers with the acceptance (returnStatus 2) and the business result follows from the matcher. Most
# tests are about that result, so their client asks for it to be waited for (RFC 7240); the tests of the
# acceptance itself use ``accepting_client``, which does not.
WAIT = {"Prefer": "wait=30"}


def _database_url(tmp_root: Path) -> str:
    return os.environ.get("SW_TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _database_url(tmp_path_factory.mktemp("db"))
    upgrade(Settings(database_url=url))
    return url


@pytest.fixture(scope="session")
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest, database_url: str) -> None:
    if request.node.get_closest_marker("postgres_only") and not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (set SW_TEST_DATABASE_URL; `.ci/run` does)")


@pytest.fixture(scope="session")
def _session_settings(database_url: str) -> Settings:
    # The dispatcher is driven explicitly by the tests that need it (``Dispatcher.run_once``), so that
    # no background task races a test's assertions or its cleanup.
    return Settings(  # type: ignore[call-arg]
        database_url=database_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        embedded_dispatcher=False,
        # Likewise webhook fan-out and delivery (tests/notify drive them, or start them with ``serving``).
        embedded_delivery=False,
        # Tests wait for each result before sending the next document: letting rounds gather more documents
        # would only slow them down (tests/test_matcher_loop.py checks the lingering itself).
        match_linger_s=0,
        sqlite_match_linger_s=0,
        # Risk warnings are recorded but do not inspect: tests that post many purchases of the example buyer
        # must not change outcome when they reach R4 (tests/test_risk_decision.py turns it on).
        risk_inspect_on_warning=False,
        # Nor are regular enterprises sampled: record ids are random, so the default 2.44 % draw would inspect
        # about one test purchase in 40 and hold its release (tests of the sampling set their own rate).
        supervision_rate_regular=Decimal("0"),
        _env_file=None,
        **signing_settings(),
    )


@pytest.fixture
def settings(_session_settings: Settings) -> Settings:
    # Reading the settings from the environment takes about 35 ms; each test gets its own deep copy instead, so
    # a test that changes its settings changes nothing for the next one.
    return _session_settings.model_copy(deep=True)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        try:
            yield application
        finally:
            await _wipe(application)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60, headers=WAIT) as http:
        yield http


@pytest.fixture
async def accepting_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that does not wait for business results: intake answers 202 with the acceptance."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as http:
        yield http


@asynccontextmanager
async def serving(
    settings: Settings, client_timeout_s: float = 60, wait: bool = True, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app of ``settings`` with ``overrides``, its lifespan running, and a client on it (asking to wait for
    business results unless ``wait`` is false); afterwards the mock agencies' pending callbacks are awaited
    and the data wiped."""
    application = create_app(settings.model_copy(update=overrides))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        base = "http://testserver"
        headers = WAIT if wait else {}
        async with httpx.AsyncClient(
            transport=transport, base_url=base, timeout=client_timeout_s, headers=headers
        ) as http:
            try:
                yield application, http
            finally:
                mock_agencies = getattr(application.state, "mock_agencies", None)
                if mock_agencies is not None:
                    await mock_agencies.wait_for_callbacks()
                await _wipe(application)


async def _wipe(app: FastAPI) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with app.state.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE gives each of the tables and their
            # indexes new files — 300-450 ms per test against 3 ms (measured), a third of the suite's time.
            # The audit trail's append-only triggers and the foreign keys are off for this transaction only
            # (the tests' superuser); the sequences start again as TRUNCATE … RESTART IDENTITY made them.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            script = "; ".join(
                [f"DELETE FROM {table}" for table in tables]  # noqa: S608 - table names from our metadata
                + ["SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"]
            )
            raw = await conn.get_raw_connection()
            # asyncpg runs a script of several statements only without parameters, on its own connection API.
            await raw.driver_connection.execute(script)  # type: ignore[union-attr]
        else:
            # SQLite has no such switch: its append-only triggers are dropped and put back as they were.
            guards = (
                await conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entry'")
                )
            ).all()
            for name, _ in guards:
                await conn.execute(text(f"DROP TRIGGER {name}"))
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - table names from our metadata
            for _, sql in guards:
                await conn.execute(text(sql))


def soak_level() -> str:
    """``SW_SOAK``: unset (the soak suites are skipped), ``quick`` (CI sizes) or ``full`` (``make soak``)."""
    return os.environ.get("SW_SOAK", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if soak_level():
        return
    skip = pytest.mark.skip(reason="soak suite: `make soak-quick` or `make soak` (SW_SOAK=quick|full)")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)


def _skipped(config: pytest.Config) -> int:
    """Skipped tests outside the soak suites (those are skipped by design unless SW_SOAK is set, and their count
    grows with every route the fuzzing covers)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return 0
    # A module skipped as a whole (the browser tests without chromium) is reported once, by its collection.
    return sum("soak" not in getattr(report, "keywords", ()) for report in reporter.stats.get("skipped", []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``SW_MAX_SKIPS`` (CI sets one per backend): more skipped tests outside the soak suites than that fails the
    run, so a suite that quietly fell back to SQLite, or lost its PostgreSQL detection, cannot pass with its race
    tests skipped."""
    limit = os.environ.get("SW_MAX_SKIPS")
    if limit is not None and exitstatus == pytest.ExitCode.OK and _skipped(session.config) > int(limit):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.figures import FIGURES, figures_table, write_figures

    backend = "PostgreSQL" if _database_url(Path()).startswith("postgresql") else "SQLite"
    skipped = _skipped(terminalreporter.config)
    limit = os.environ.get("SW_MAX_SKIPS")
    verdict = "" if limit is None else f" (at most {limit} allowed{': FAILED' if skipped > int(limit) else ''})"
    terminalreporter.write_line(f"skipped on {backend} outside the soak suites: {skipped}{verdict}")

    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    terminalreporter.write_line(figures_table())
    path = write_figures()
    if path is not None:
        terminalreporter.write_line(f"written to {path}")
