"""The officials' warning queue and an enterprise's risk view, through the HTTP app; warning handling and
complaint triage in the audit trail (each act with who, before and after; a refused act writes nothing)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, post_triple, purchase

SELLER = "3120960A02"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # R3 at two buyers per telephone: a warning with few purchases.
    async with serving(settings, risk_ids_per_phone=2, supervision_rate_regular=0.0) as (_, http):
        yield http


async def official(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/officials", json={"label": "风险防控"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


async def shared_phone_purchases(client: httpx.AsyncClient, parties: Parties, count: int) -> list[dict[str, Any]]:
    shared = {"consigneeTelephone": "13912345678"}
    triples = [purchase(own_buyer=True, order=shared, waybill=shared) for _ in range(count)]
    return [(await post_triple(client, parties, t))[-1].json() for t in triples]


async def test_queue_filters_pages_and_handling(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    customs = await official(client)
    receipts = await shared_phone_purchases(client, parties, 4)  # the 2nd, 3rd and 4th warn (R3)
    page = await client.get("/api/v1/risk/warnings", params={"limit": 2}, headers=customs)
    assert page.status_code == 200, page.text
    first = page.json()
    assert [w["rule"] for w in first["items"]] == ["R3", "R3"]
    assert [w["recordId"] for w in first["items"]] == [r["recordId"] for r in receipts[1:3]]
    rest = (await client.get("/api/v1/risk/warnings", params={"cursor": first["nextCursor"]}, headers=customs)).json()
    assert [w["recordId"] for w in rest["items"]] == [receipts[3]["recordId"]]
    assert rest["nextCursor"] is None
    warning = first["items"][0]
    assert (warning["status"], warning["ebcCode"], warning["detail"]["threshold"]) == ("open", SELLER, "2")

    path = f"/api/v1/risk/warnings/{warning['id']}"
    acknowledged = await client.post(f"{path}/acknowledge", json={"note": "核查中"}, headers=customs)
    assert acknowledged.status_code == 200, acknowledged.text
    assert (acknowledged.json()["status"], acknowledged.json()["note"]) == ("acknowledged", "核查中")
    escalated = (await client.post(f"{path}/escalate", json={"note": "转缉私"}, headers=customs)).json()
    assert escalated["status"] == "escalated"
    assert escalated["handledBy"].startswith("official:")
    final = await client.post(f"{path}/dismiss", json={"note": "x"}, headers=customs)
    assert (final.status_code, final.json()["code"]) == (409, "WARNING_ALREADY_HANDLED")

    still_open = (await client.get("/api/v1/risk/warnings", params={"status": "open"}, headers=customs)).json()
    assert [w["id"] for w in still_open["items"]] == [w["id"] for w in [*first["items"][1:], *rest["items"]]]
    by_record = await client.get("/api/v1/risk/warnings", params={"recordId": receipts[1]["recordId"]}, headers=customs)
    assert [w["id"] for w in by_record.json()["items"]] == [warning["id"]]
    other = await client.get("/api/v1/risk/warnings", params={"enterpriseCode": "3120960A99"}, headers=customs)
    assert other.json()["items"] == []

    timeline = (await client.get(f"/api/v1/records/{receipts[1]['recordId']}", headers=customs)).json()["timeline"]
    handled = [e["detail"] for e in timeline if e["kind"] == "risk_warning_handled"]
    assert [(h["from"], h["to"], h["note"]) for h in handled] == [
        ("open", "acknowledged", "核查中"),
        ("acknowledged", "escalated", "转缉私"),
    ]


async def test_queue_is_for_officials_and_bad_input_is_4xx(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    refused = await client.get("/api/v1/risk/warnings", headers=parties.seller)
    assert (refused.status_code, refused.json()["code"]) == (403, "OFFICIAL_REQUIRED")
    assert (await client.get("/api/v1/risk/warnings", params={"cursor": "abc"}, headers=ADMIN)).status_code == 422
    assert (await client.get("/api/v1/risk/warnings", params={"rule": "R99"}, headers=ADMIN)).status_code == 422
    missing = await client.post("/api/v1/risk/warnings/999/dismiss", json={"note": "x"}, headers=ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (404, "WARNING_NOT_FOUND")
    assert (await client.post("/api/v1/risk/warnings/1/close", json={"note": "x"}, headers=ADMIN)).status_code == 422
    assert (await client.post("/api/v1/risk/warnings/1/dismiss", json={"note": ""}, headers=ADMIN)).status_code == 422


async def test_enterprise_view_shows_level_score_and_warnings(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    customs = await official(client)
    await shared_phone_purchases(client, parties, 3)
    credit = {"level": "certified", "basis": "AEO", "effectiveDate": "2026-11-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=credit, headers=customs)).status_code == 200
    response = await client.get(f"/api/v1/enterprises/{SELLER}/risk", headers=customs)
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["creditLevel"], view["records"], view["openWarnings"]) == ("certified", 3, {"R3": 2})
    assert (view["localScore"], view["watchList"]) == (100, False)
    assert (view["recentRejectionRate"], view["r8RejectionOutlier"]) == (0.0, False)  # no peers to compare with
    assert len(view["recentWarnings"]) == 2
    assert (await client.get(f"/api/v1/enterprises/{SELLER}/risk", headers=parties.seller)).status_code == 403


# --- the audit trail of warning handling and complaint triage ---------------------------------------------

TRAIL = "/api/v1/audit"
REPORT = {"kind": "stolen_identity", "what": "本人未购买", "name": "王小明", "idNumber": "33010619900101123X"}


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
