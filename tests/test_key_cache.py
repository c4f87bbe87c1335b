"""Keys are trusted for a fraction of a second per process: a revocation or a suspension made in this process
stops the key at once, one made in another process within ``SW_KEY_CACHE_S``."""

from __future__ import annotations

import asyncio

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.factories import file_enterprise

CODE = "3120960A01"


async def test_a_key_revoked_here_stops_at_once_and_elsewhere_within_the_cache_time(settings: Settings) -> None:
    async with serving(settings, key_cache_s=0.5) as (_, here), serving(settings, key_cache_s=0.5) as (_, there):
        key = await file_enterprise(here, CODE, "平台", ["platform"])
        listed = await here.get(f"/api/v1/enterprises/{CODE}/keys", headers=ADMIN)
        key_id = listed.json()["items"][0]["id"]
        # Both processes have checked the key a moment ago.
        assert (await here.get(f"/api/v1/enterprises/{CODE}", headers=key)).status_code == 200
        assert (await there.get(f"/api/v1/enterprises/{CODE}", headers=key)).status_code == 200

        assert (await here.delete(f"/api/v1/enterprises/{CODE}/keys/{key_id}", headers=ADMIN)).status_code == 204
        assert (await here.get(f"/api/v1/enterprises/{CODE}", headers=key)).status_code == 401
        # The other process trusted it for at most its cache time.
        assert (await there.get(f"/api/v1/enterprises/{CODE}", headers=key)).status_code == 200
        await asyncio.sleep(0.6)
        assert (await there.get(f"/api/v1/enterprises/{CODE}", headers=key)).status_code == 401


async def test_a_suspension_stops_the_enterprises_keys_at_once(settings: Settings) -> None:
    async with serving(settings, key_cache_s=1.0) as (_, http):
        key = await file_enterprise(http, CODE, "平台", ["platform"])
        assert (await http.post(f"/api/v1/enterprises/{CODE}/keys", json={}, headers=key)).status_code == 201
        suspended = await http.patch(f"/api/v1/enterprises/{CODE}", json={"status": "suspended"}, headers=ADMIN)
        assert suspended.status_code == 200, suspended.text
        refused = await http.post(f"/api/v1/enterprises/{CODE}/keys", json={}, headers=key)
        assert refused.status_code == 403
        assert refused.json()["code"] == "ENTERPRISE_SUSPENDED"
