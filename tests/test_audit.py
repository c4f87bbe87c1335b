"""The audit trail: each administrative act leaves exactly one entry (who, what, before and after) in the
transaction of the act; entries cannot be changed or removed; admins and officials read it, enterprises not."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.factories import file_goods, file_parties, key_header, post_triple, purchase
from tests.live import clean_env
from tests.signing import identity
from tests.test_dispatch import drain

TRAIL = "/api/v1/audit"


async def _trail(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(TRAIL, params={"limit": 500} | params, headers=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class Trail:
    """Counts the entries, so that each act can be shown to add exactly one."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.seen = 0

    async def one_new(self, action: str, target_kind: str) -> dict[str, Any]:
        items = await _trail(self.client)
        assert len(items) == self.seen + 1, [i["action"] for i in items[: len(items) - self.seen]]
        self.seen += 1
        newest = items[0]
        assert (newest["action"], newest["targetKind"]) == (action, target_kind)
        return newest

    async def none_new(self) -> None:
        assert len(await _trail(self.client)) == self.seen


async def test_each_filing_act_leaves_one_entry_with_before_and_after(client: httpx.AsyncClient) -> None:
    trail = Trail(client)
    code, agent = "3120960Z01", "3120960Z02"

    filed = await client.post(
        "/api/v1/enterprises",
        json={"code": code, "name": "审计测试平台", "roles": ["platform"]},
        headers=ADMIN | {"X-Request-ID": "req-audit-1"},
    )
    entry = await trail.one_new("enterprise.filed", "enterprise")
    assert (entry["actorKind"], entry["actorId"], entry["targetId"]) == ("admin", "bootstrap", code)
    assert entry["before"] is None
    assert entry["after"] == filed.json()
    assert entry["requestId"] == "req-audit-1"

    again = await client.post(
        "/api/v1/enterprises", json={"code": code, "name": "x", "roles": ["platform"]}, headers=ADMIN
    )
    assert again.status_code == 409
    await trail.none_new()  # a refused act leaves nothing: the entry is in the act's transaction

    issued = (await client.post(f"/api/v1/enterprises/{code}/keys", json={"label": "ERP"}, headers=ADMIN)).json()
    entry = await trail.one_new("key.issued", "api_key")
    assert entry["targetId"] == issued["id"]
    assert entry["after"]["label"] == "ERP"
    assert entry["after"]["enterpriseCode"] == code
    assert issued["key"] not in str(entry)  # never the secret

    own = key_header(issued["key"])
    second = (await client.post(f"/api/v1/enterprises/{code}/keys", json={}, headers=own)).json()
    entry = await trail.one_new("key.issued", "api_key")
    assert (entry["actorKind"], entry["actorId"], entry["actorKeyId"]) == ("enterprise", code, issued["id"])

    assert (await client.delete(f"/api/v1/enterprises/{code}/keys/{second['id']}", headers=own)).status_code == 204
    entry = await trail.one_new("key.revoked", "api_key")
    assert entry["before"]["revokedAt"] is None
    assert entry["after"]["revokedAt"] is not None

    for patch, action in (
        ({"status": "suspended"}, "enterprise.suspended"),
        ({"status": "active"}, "enterprise.reactivated"),
        ({"name": "审计测试平台二"}, "enterprise.changed"),
    ):
        assert (await client.patch(f"/api/v1/enterprises/{code}", json=patch, headers=ADMIN)).status_code == 200
        entry = await trail.one_new(action, "enterprise")
        changed = next(iter(patch))
        assert entry["before"][changed] != entry["after"][changed] == patch[changed]

    official = (await client.post("/api/v1/officials", json={"label": "关员 1"}, headers=ADMIN)).json()
    entry = await trail.one_new("official.created", "api_key")
    assert (entry["targetId"], entry["after"]["kind"]) == (official["id"], "official")

    await client.post(
        "/api/v1/enterprises", json={"code": agent, "name": "代理", "roles": ["logistics"]}, headers=ADMIN
    )
    await trail.one_new("enterprise.filed", "enterprise")
    delegations = f"/api/v1/enterprises/{code}/delegations"
    granted = (
        await client.post(delegations, json={"agentCode": agent, "documentTypes": ["order"]}, headers=own)
    ).json()
    entry = await trail.one_new("delegation.granted", "delegation")
    assert entry["before"] is None
    assert entry["after"]["documentTypes"] == ["order"]
    await client.post(delegations, json={"agentCode": agent, "documentTypes": ["order", "payment"]}, headers=own)
    entry = await trail.one_new("delegation.granted", "delegation")
    assert (entry["before"]["documentTypes"], entry["after"]["documentTypes"]) == (["order"], ["order", "payment"])
    assert (await client.delete(f"{delegations}/{granted['id']}", headers=ADMIN)).status_code == 204
    entry = await trail.one_new("delegation.revoked", "delegation")
    assert (entry["before"]["revokedAt"], entry["actorKind"]) == (None, "admin")


async def test_goods_and_certificate_acts_are_recorded(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    trail = Trail(client)
    trail.seen = len(await _trail(client))
    seller = "3120960A02"

    await file_goods(client, itemNo="AUDIT-1")
    entry = await trail.one_new("goods.filed", "goods")
    assert (entry["targetId"], entry["after"]["itemNo"]) == (f"{seller}/AUDIT-1", "AUDIT-1")
    changed = await client.patch(f"/api/v1/goods/{seller}/AUDIT-1", json={"vatRate": "0.09"}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    entry = await trail.one_new("goods.changed", "goods")
    assert (entry["before"]["vatRate"], entry["after"]["vatRate"]) == ("0.13", "0.09")

    _, certificate = identity("SM2", "audit")
    path = f"/api/v1/enterprises/{seller}/certificates"
    filed = (await client.post(path, json={"pem": certificate.pem().decode()}, headers=ADMIN)).json()
    entry = await trail.one_new("certificate.filed", "certificate")
    assert entry["after"]["fingerprint"] == certificate.fingerprint
    assert (await client.delete(f"{path}/{filed['id']}", headers=ADMIN)).status_code == 204
    entry = await trail.one_new("certificate.revoked", "certificate")
    assert entry["before"]["revokedAt"] is None
    assert entry["after"]["revokedAt"] is not None


async def test_dead_letter_retry_and_redispatch_are_recorded(settings: Settings) -> None:
    broken = {"fx": "http://embedded/mock/nowhere"}  # 404: permanent, so the fx dispatch goes dead at once
    async with serving(settings, agency_urls=broken, mock_inspection_rate_general=0.0) as (app, client):
        app.state.adapters["fx"].client = app.state.adapters["customs"].client
        parties = await file_parties(client)
        records = [(await post_triple(client, parties, purchase()))[-1].json()["recordId"] for _ in range(2)]
        await drain(app)
        dead = (await client.get("/api/v1/admin/dispatches", params={"status": "dead"}, headers=ADMIN)).json()
        assert len(dead["items"]) == 2
        app.state.adapters["fx"].base_url = "http://embedded/mock/fx"
        trail = Trail(client)
        trail.seen = len(await _trail(client))

        first = next(d for d in dead["items"] if d["recordId"] == records[0])
        assert (await client.post(f"/api/v1/admin/dispatches/{first['id']}/retry", headers=ADMIN)).status_code == 200
        entry = await trail.one_new("dead_letter.retried", "dispatch")
        assert (entry["targetId"], entry["before"]["status"], entry["after"]["status"]) == (
            first["id"],
            "dead",
            "pending",
        )

        assert (await client.post(f"/api/v1/records/{records[1]}/redispatch", headers=ADMIN)).status_code == 200
        entry = await trail.one_new("record.redispatched", "match_record")
        assert entry["targetId"] == records[1]
        assert [d["status"] for d in entry["before"]["items"]] == ["dead"]
        assert [d["status"] for d in entry["after"]["items"]] == ["pending"]
        await drain(app)


async def test_audit_rows_cannot_be_changed_or_removed(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/officials", json={"label": "x"}, headers=ADMIN)
    [entry] = await _trail(client)
    statements = [
        "UPDATE audit_entry SET action = 'nothing.happened'",
        "DELETE FROM audit_entry",
    ]
    if app.state.engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_entry")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with app.state.engine.begin() as conn:
                await conn.execute(text(statement))
    assert await _trail(client) == [entry]


async def test_officials_read_the_trail_and_raw_messages_enterprises_do_not(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (_, client):
        parties = await file_parties(client)
        issued = await client.post("/api/v1/officials", json={"label": "关员"}, headers=ADMIN)
        official = key_header(issued.json()["key"])
        order = purchase()[0]
        sent = await client.post("/api/v1/orders", json=order, headers=parties.platform)
        assert sent.status_code == 202, sent.text

        refused = await client.get(TRAIL, headers=parties.platform)
        assert (refused.status_code, refused.json()["code"]) == (403, "ADMIN_REQUIRED")
        read = await client.get(TRAIL, params={"action": "official.created"}, headers=official)
        assert [e["action"] for e in read.json()["items"]] == ["official.created"]

        [submission] = (await client.get("/api/v1/admin/submissions", headers=official)).json()["items"]
        path = f"{TRAIL}/messages/{submission['rawMessageId']}"
        raw = (await client.get(path, headers=official)).json()
        assert raw["encoding"] == "utf-8"
        assert order["orderNo"] in raw["body"]
        assert raw["size"] == len(raw["body"].encode())
        assert (await client.get(path, headers=parties.platform)).status_code == 403
        missing = await client.get(f"{TRAIL}/messages/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=official)
        assert (missing.status_code, missing.json()["code"]) == (404, "RAW_MESSAGE_NOT_FOUND")


async def test_filters_and_cursor(client: httpx.AsyncClient) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    await file_parties(client)  # 4 enterprises, 4 keys, 1 goods record
    everything = await _trail(client)
    assert len(everything) == 9
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)

    assert len(await _trail(client, action="key.issued")) == 4
    assert len(await _trail(client, action="key.")) == 4
    assert [e["targetId"] for e in await _trail(client, targetKind="enterprise", targetId="3120960A02")] == [
        "3120960A02"
    ]
    assert len(await _trail(client, actor="bootstrap")) == 9
    assert len(await _trail(client, since=started.isoformat())) == 9
    assert await _trail(client, until=started.isoformat()) == []

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(TRAIL, params=params, headers=ADMIN)).json()
        pages.append([e["id"] for e in page["items"]])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [i for page in pages for i in page] == [e["id"] for e in everything]
    bad = await client.get(TRAIL, params={"cursor": "not-ours"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["code"]) == (422, "INVALID_CURSOR")


def test_sw_admin_key_is_recorded(tmp_path: Path) -> None:
    database = tmp_path / "sw.db"
    env = clean_env(SW_DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    subprocess.run(
        [sys.executable, "-m", "app", "admin-key", "--create", "--label", "ops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT actor_kind, actor_id, action, target_kind, after FROM audit_entry").fetchall()
    [(kind, actor, action, target, after)] = rows
    assert (kind, actor, action, target) == ("admin", "cli:sw admin-key", "key.issued", "api_key")
    assert '"label": "ops"' in after or '"label":"ops"' in after


async def test_times_are_iso_8601_with_a_zone(client: httpx.AsyncClient) -> None:
    for value in ("0.5", "1700000000", "2026-11-23T08:00:00"):
        refused = await client.get(TRAIL, params={"until": value}, headers=ADMIN)
        assert refused.status_code == 422, value
        assert refused.json()["errors"][0]["path"] == "query/until"
    assert (await client.get(TRAIL, params={"until": "2026-11-23T08:00:00+08:00"}, headers=ADMIN)).status_code == 200
