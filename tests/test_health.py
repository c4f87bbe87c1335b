from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from tests.conftest import ADMIN


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["migration"] == body["expectedMigration"] is not None


async def test_readyz_not_ready_without_migrations(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.json()["migration"] is None


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "NOT_FOUND"


async def test_database_down_is_503_problem_not_500() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:9/unreachable",
        admin_token=SecretStr("a-bootstrap-admin-token"),
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/api/v1/records", headers={"X-API-Key": "a-bootstrap-admin-token"})
        ready = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "DATABASE_UNAVAILABLE"
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"


async def test_nul_in_url_is_400_not_500(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/orders/3120960A01/A%00B", "/api/v1/records?orderNo=A%00B"):
        response = await client.get(path, headers={"X-API-Key": "whatever"})
        assert response.status_code == 400, path
        assert response.json()["code"] == "MALFORMED_URL"


def test_json_log_lines_carry_the_request_and_record_ids() -> None:
    import json
    import logging

    from app.observability import JsonFormatter, record_id_var, request_id_var

    record = logging.LogRecord("app.test", logging.WARNING, __file__, 1, "dispatch %s failed", ("d-1",), None)
    request_token, record_token = request_id_var.set("req-42"), record_id_var.set("rec-7")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(request_token)
        record_id_var.reset(record_token)
    assert line["message"] == "dispatch d-1 failed"
    assert (line["level"], line["requestId"], line["recordId"]) == ("WARNING", "req-42", "rec-7")


async def test_a_2xx_is_only_sent_after_the_commit(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant 1: when the commit fails, the client must not have been told 201."""
    from sqlalchemy.ext.asyncio.session import AsyncSessionTransaction

    async def failing_exit(self: AsyncSessionTransaction, *exc: object) -> None:
        await self.rollback()
        raise RuntimeError("the commit failed")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        monkeypatch.setattr(AsyncSessionTransaction, "__aexit__", failing_exit)
        body = {"code": "3120960A01", "name": "平台", "roles": ["platform"]}
        response = await http.post("/api/v1/enterprises", json=body, headers=ADMIN)
        monkeypatch.undo()
        assert response.status_code == 500
        assert (await http.get("/api/v1/enterprises/3120960A01", headers=ADMIN)).status_code == 404
