"""Warning handling and complaint triage are administrative acts: each one is in the audit trail (who, what,
before and after), written with the act — and a refused act writes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase

TRAIL = "/api/v1/audit"
REPORT = {"kind": "stolen_identity", "what": "本人未购买", "name": "王小明", "idNumber": "33010619900101123X"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # R3 at two buyers per telephone: a warning with two purchases.
    async with serving(settings, risk_ids_per_phone=2, supervision_rate_regular=0.0) as (_, http):
        yield http


async def official(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/officials", json={"label": "风险防控"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


async def trail(client: httpx.AsyncClient, prefix: str) -> list[dict[str, Any]]:
    """The entries whose action starts with ``prefix``, oldest first."""
    items = (await client.get(TRAIL, params={"limit": 500}, headers=ADMIN)).json()["items"]
    return [e for e in reversed(items) if e["action"].startswith(prefix)]


async def test_warning_handling_is_audited(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    customs = await official(client)
    shared = {"consigneeTelephone": "13912345678"}
    for _ in range(2):
        await post_triple(client, parties, purchase(own_buyer=True, order=shared, waybill=shared))
    [warning] = (await client.get("/api/v1/risk/warnings", headers=customs)).json()["items"]
    path = f"/api/v1/risk/warnings/{warning['id']}"
    assert (await client.post(f"{path}/acknowledge", json={"note": "核查中"}, headers=customs)).status_code == 200
    assert (await client.post(f"{path}/escalate", json={"note": "转缉私"}, headers=customs)).status_code == 200
    refused = await client.post(f"{path}/dismiss", json={"note": "x"}, headers=customs)
    assert refused.status_code == 409

    entries = await trail(client, "risk_warning.")
    assert [e["action"] for e in entries] == ["risk_warning.acknowledged", "risk_warning.escalated"]
    acknowledged, escalated = entries
    assert (acknowledged["targetKind"], acknowledged["targetId"]) == ("risk_warning", str(warning["id"]))
    assert acknowledged["actorKind"] == "official"
    assert acknowledged["before"] == {"status": "open", "note": None, "handledBy": None}
    assert acknowledged["after"]["status"] == "acknowledged"
    assert (acknowledged["after"]["note"], acknowledged["after"]["rule"]) == ("核查中", "R3")
    assert escalated["before"]["status"] == "acknowledged"
    assert (escalated["after"]["status"], escalated["after"]["note"]) == ("escalated", "转缉私")


async def test_complaint_triage_is_audited_without_the_report(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    customs = await official(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    filed = (await client.post("/api/v1/public/complaints", json=REPORT)).json()
    path = f"/api/v1/complaints/{filed['id']}/triage"
    looking = {"status": "investigating", "note": "已联系平台"}
    assert (await client.post(path, json=looking, headers=customs)).status_code == 200
    upheld = {"status": "upheld", "enterpriseCode": "3120960A02", "recordIds": [receipt["recordId"]], "note": "属实"}
    assert (await client.post(path, json=upheld, headers=customs)).status_code == 200
    unknown = upheld | {"recordIds": ["00000000-0000-4000-8000-000000000000"]}
    assert (await client.post(path, json=unknown, headers=customs)).status_code == 404  # refused: not audited

    entries = await trail(client, "complaint.")
    assert [e["action"] for e in entries] == ["complaint.investigating", "complaint.upheld"]
    investigating, upheld_entry = entries
    assert (investigating["targetKind"], investigating["targetId"]) == ("complaint", str(filed["id"]))
    assert investigating["actorKind"] == "official"
    assert (investigating["before"]["status"], investigating["after"]["status"]) == ("received", "investigating")
    assert upheld_entry["before"]["status"] == "investigating"
    assert upheld_entry["after"] == {
        "status": "upheld",
        "enterpriseCode": "3120960A02",
        "recordIds": [receipt["recordId"]],
        "note": "属实",
        "handledBy": upheld_entry["after"]["handledBy"],
    }
    assert upheld_entry["after"]["handledBy"].startswith("official:")
    text = json.dumps(entries, ensure_ascii=False)
    assert REPORT["idNumber"] not in text  # the reporter's personal data stays in the complaint
    assert REPORT["name"] not in text
