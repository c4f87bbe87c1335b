"""Credit levels set by officials, with history, and supervision profiles changed at run time (audited)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.config import Settings
from app.models import RecordEvent
from tests.conftest import ADMIN, serving
from tests.factories import file_parties

SELLER = "3120960A02"
PROFILES = [
    {"level": "advanced_certified", "inspectionRate": "0.002"},
    {"level": "certified", "inspectionRate": "0.006"},
    {"level": "regular", "inspectionRate": "0.03"},
    {"level": "dishonest", "inspectionRate": "0.9"},
    {"level": "seriously_dishonest", "inspectionRate": "1", "block": True},
]


async def official(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/officials", json={"label": "杭州海关 · 企管"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


async def audit(app: FastAPI, kind: str) -> list[dict[str, Any]]:
    """The audit trail's events of ``kind`` (record_event rows without a record), oldest first."""
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(RecordEvent).where(RecordEvent.kind == kind).order_by(RecordEvent.id))
        return [row.detail for row in rows]


async def test_official_sets_a_level_and_history_is_kept(client: httpx.AsyncClient, app: FastAPI) -> None:
    parties = await file_parties(client)
    customs = await official(client)
    fresh = await client.get(f"/api/v1/enterprises/{SELLER}/credit", headers=customs)
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["level"], fresh.json()["history"]) == ("regular", [])

    first = {"level": "certified", "basis": "AEO 认证 AEOCN3120960A02", "effectiveDate": "2026-11-01"}
    second = {"level": "dishonest", "basis": "走私违法 (2026)杭关缉字第12号", "effectiveDate": "2026-12-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=first, headers=customs)).status_code == 200
    response = await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=second, headers=customs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["level"], body["levelZh"]) == ("dishonest", "失信企业")
    assert [(h["previousLevel"], h["level"], h["effectiveDate"]) for h in body["history"]] == [
        ("certified", "dishonest", "2026-12-01"),
        ("regular", "certified", "2026-11-01"),
    ]
    assert body["history"][0]["setBy"].startswith("official:")
    # The enterprise reads its own level; it cannot set it, nor read another's.
    own = await client.get(f"/api/v1/enterprises/{SELLER}/credit", headers=parties.seller)
    assert own.json()["level"] == "dishonest"
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=first, headers=parties.seller)).json()[
        "code"
    ] == "OFFICIAL_REQUIRED"
    assert (await client.get(f"/api/v1/enterprises/{SELLER}/credit", headers=parties.platform)).status_code == 404
    changes = await audit(app, "credit_level_set")
    assert [(c["from"], c["to"]) for c in changes] == [("regular", "certified"), ("certified", "dishonest")]
    trail = (await client.get("/api/v1/audit", params={"action": "credit.level_set"}, headers=ADMIN)).json()["items"]
    assert [(e["before"]["level"], e["after"]["level"], e["actorKind"]) for e in reversed(trail)] == [
        ("regular", "certified", "official"),
        ("certified", "dishonest", "official"),
    ]


async def test_bad_credit_input_is_a_clear_4xx(client: httpx.AsyncClient) -> None:
    await file_parties(client)
    bad = {"level": "excellent", "basis": "x", "effectiveDate": "2026-11-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=bad, headers=ADMIN)).status_code == 422
    good = {"level": "regular", "basis": "x", "effectiveDate": "2026-11-01"}
    missing = await client.put("/api/v1/enterprises/9999999999/credit", json=good, headers=ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (404, "ENTERPRISE_NOT_FOUND")


async def test_profiles_default_from_settings_then_officials_change_them(settings: Settings) -> None:
    async with serving(settings, supervision_rate_regular=Decimal("0.0244")) as (app, client):
        await _profiles_default_from_settings_then_officials_change_them(client, app)


async def _profiles_default_from_settings_then_officials_change_them(client: httpx.AsyncClient, app: FastAPI) -> None:
    customs = await official(client)
    defaults = (await client.get("/api/v1/risk/profiles", headers=customs)).json()["profiles"]
    assert {p["level"]: (p["inspectionRate"], p["source"]) for p in defaults}["regular"] == ("0.0244", "settings")
    response = await client.put("/api/v1/risk/profiles", json={"profiles": PROFILES}, headers=customs)
    assert response.status_code == 200, response.text
    stored = {p["level"]: p for p in response.json()["profiles"]}
    assert stored["regular"]["inspectionRate"] == "0.03"
    assert stored["seriously_dishonest"]["block"] is True
    assert {p["source"] for p in stored.values()} == {"official"}
    again = (await client.get("/api/v1/risk/profiles", headers=customs)).json()["profiles"]
    assert {p["level"]: p["inspectionRate"] for p in again} == {
        p["level"]: p["inspectionRate"] for p in stored.values()
    }
    [change] = await audit(app, "supervision_profiles_set")
    assert {"level": "regular", "inspectionRate": "0.03", "block": False} in change["profiles"]
    [entry] = (await client.get("/api/v1/audit", params={"action": "supervision.profiles_set"}, headers=ADMIN)).json()[
        "items"
    ]
    assert (entry["before"], entry["after"]["regular"]) == ({}, {"inspectionRate": "0.03", "block": False})


async def test_profiles_out_of_bounds_are_refused(client: httpx.AsyncClient) -> None:
    lenient = [p | {"inspectionRate": "0.5"} if p["level"] == "dishonest" else p for p in PROFILES]
    response = await client.put("/api/v1/risk/profiles", json={"profiles": lenient}, headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (422, "PROFILE_OUT_OF_BOUNDS")
    assert response.json()["problems"] == ["dishonest: a 失信 level's rate must be at least 0.8"]
    twice = [PROFILES[0]] * 5
    assert (await client.put("/api/v1/risk/profiles", json={"profiles": twice}, headers=ADMIN)).status_code == 422
    current = (await client.get("/api/v1/risk/profiles", headers=ADMIN)).json()["profiles"]
    assert {p["source"] for p in current} == {"settings"}
