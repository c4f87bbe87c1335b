"""API keys' lifecycle: optional expiry, rotation with an overlap, last use written at most once a minute, and
an enterprise listing its own keys. Every key act is in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.config import Settings
from app.services.auth import Principal
from app.services.filing_cache import FilingCache
from tests.conftest import ADMIN, serving
from tests.factories import file_enterprise, key_header

CODE, OTHER = "3120960A01", "3120960L01"
KEYS = f"/api/v1/enterprises/{CODE}/keys"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _keys(client: httpx.AsyncClient, headers: dict[str, str] = ADMIN) -> dict[str, dict[str, Any]]:
    listed = await client.get(KEYS, headers=headers)
    assert listed.status_code == 200, listed.text
    return {k["id"]: k for k in listed.json()["items"]}


async def _status(client: httpx.AsyncClient, key: dict[str, str]) -> tuple[int, str | None]:
    response = await client.get(f"/api/v1/enterprises/{CODE}", headers=key)
    return response.status_code, response.json()["code"] if response.is_error else None


async def test_expiry_is_optional_in_the_future_and_tz_aware(client: httpx.AsyncClient) -> None:
    await file_enterprise(client, CODE, "平台", ["platform"])
    later = datetime.now(UTC) + timedelta(days=30)
    issued = await client.post(KEYS, json={"expiresAt": later.isoformat()}, headers=ADMIN)
    assert issued.status_code == 201, issued.text
    assert abs(_at(issued.json()["expiresAt"]) - later) < timedelta(milliseconds=1)
    assert await _status(client, key_header(issued.json()["key"])) == (200, None)

    past = await client.post(KEYS, json={"expiresAt": "2020-01-01T00:00:00Z"}, headers=ADMIN)
    assert (past.status_code, past.json()["code"]) == (422, "KEY_EXPIRY_PAST")
    naive = await client.post(KEYS, json={"expiresAt": "2030-01-01T00:00:00"}, headers=ADMIN)
    assert naive.status_code == 422


async def test_rotation_keeps_both_keys_for_the_overlap_then_only_the_new_one(client: httpx.AsyncClient) -> None:
    old = await file_enterprise(client, CODE, "平台", ["platform"])
    [old_id] = await _keys(client)

    before = datetime.now(UTC)
    rotated = await client.post(f"{KEYS}/{old_id}/rotate", headers=old)  # by the enterprise, default overlap
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    new = key_header(body["issued"]["key"])
    assert body["replaced"]["id"] == old_id
    ends = _at(body["replaced"]["expiresAt"])
    assert before + timedelta(hours=24) <= ends <= datetime.now(UTC) + timedelta(hours=24)
    assert await _status(client, old) == (200, None)  # the overlap: both work
    assert await _status(client, new) == (200, None)

    # Rotated again at once, with no overlap: the second key stops now, the third works.
    again = await client.post(f"{KEYS}/{body['issued']['id']}/rotate", json={"overlapSeconds": 0}, headers=new)
    assert again.status_code == 201, again.text
    assert await _status(client, new) == (401, "KEY_EXPIRED")
    assert await _status(client, key_header(again.json()["issued"]["key"])) == (200, None)
    refused = await client.post(f"{KEYS}/{body['issued']['id']}/rotate", headers=ADMIN)
    assert (refused.status_code, refused.json()["code"]) == (409, "KEY_NOT_ROTATABLE")

    trail = (await client.get("/api/v1/audit", params={"action": "key.rotated"}, headers=ADMIN)).json()["items"]
    assert [e["targetId"] for e in trail] == [body["issued"]["id"], old_id]
    assert trail[1]["before"]["expiresAt"] is None
    assert _at(trail[1]["after"]["expiresAt"]) == ends
    assert trail[1]["after"]["replacedBy"]["id"] == body["issued"]["id"]
    assert body["issued"]["key"] not in str(trail)


async def test_rotation_keeps_an_earlier_expiry_and_refuses_what_it_should(client: httpx.AsyncClient) -> None:
    await file_enterprise(client, CODE, "平台", ["platform"])
    other = await file_enterprise(client, OTHER, "物流", ["logistics"])
    soon = datetime.now(UTC) + timedelta(hours=1)
    issued = (await client.post(KEYS, json={"expiresAt": soon.isoformat(), "label": "ERP"}, headers=ADMIN)).json()
    rotated = (await client.post(f"{KEYS}/{issued['id']}/rotate", headers=ADMIN)).json()
    assert rotated["replaced"]["expiresAt"] == issued["expiresAt"]  # 1 h is sooner than the 24 h overlap
    assert rotated["issued"]["label"] == "ERP"  # the old label, unless another is given
    assert rotated["issued"]["expiresAt"] is None

    too_long = await client.post(f"{KEYS}/{issued['id']}/rotate", json={"overlapSeconds": 31 * 86400}, headers=ADMIN)
    assert too_long.status_code == 422
    foreign = await client.post(f"{KEYS}/{issued['id']}/rotate", headers=other)
    assert (foreign.status_code, foreign.json()["code"]) == (404, "ENTERPRISE_NOT_FOUND")
    assert (await client.delete(f"{KEYS}/{rotated['issued']['id']}", headers=ADMIN)).status_code == 204
    revoked = await client.post(f"{KEYS}/{rotated['issued']['id']}/rotate", headers=ADMIN)
    assert (revoked.status_code, revoked.json()["code"]) == (409, "KEY_NOT_ROTATABLE")


async def test_last_use_is_written_once_a_minute_not_per_request(settings: Settings) -> None:
    async with serving(settings) as (_, here), serving(settings) as (_, there):
        key = await file_enterprise(here, CODE, "平台", ["platform"])
        [key_id] = await _keys(here)
        assert (await _keys(here))[key_id]["lastUsedAt"] is None

        assert await _status(here, key) == (200, None)
        first = (await _keys(here, key))[key_id]["lastUsedAt"]  # the enterprise lists its own keys
        assert first is not None
        for _ in range(3):
            assert await _status(here, key) == (200, None)
        assert await _status(there, key) == (200, None)  # another process: its write finds a recent one
        assert (await _keys(there, key))[key_id]["lastUsedAt"] == first

        other = await file_enterprise(here, OTHER, "物流", ["logistics"])
        assert (await here.get(KEYS, headers=other)).status_code == 404


def test_the_cache_says_when_a_last_use_is_due_and_forgets_no_expiry() -> None:
    cache = FilingCache(ttl_s=60)
    assert cache.key_use_due("k1")
    assert not cache.key_use_due("k1")
    cache.clear()  # a change to some key clears the principals, not when last uses were written
    assert not cache.key_use_due("k1")
    assert cache.key_use_due("k2")

    expired = Principal("enterprise", "k3", CODE, "active", key_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    cache.put("prefix", "hash", expired)
    assert cache.get("prefix", "hash") is None  # read again, and refused as expired
    fresh = Principal("enterprise", "k3", CODE, "active", key_expires_at=datetime.now(UTC) + timedelta(hours=1))
    cache.put("prefix", "hash", fresh)
    assert cache.get("prefix", "hash") == fresh
