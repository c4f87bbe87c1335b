"""The risk and credit decision at the declare seam, through the HTTP app: warnings from the incremental
counters, the parties' credit levels, blocking, and what officials and enterprises see of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, post_triple, purchase

SELLER = "3120960A02"
ADDRESS = "浙江省杭州市西湖区文三路 8 号"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(settings, risk_inspect_on_warning=True, supervision_rate_regular=0.0) as (_, http):
        yield http


async def official_detail(client: httpx.AsyncClient, record_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def buy(client: httpx.AsyncClient, parties: Parties, **changes: Any) -> dict[str, Any]:
    receipt: dict[str, Any] = (await post_triple(client, parties, purchase(own_buyer=True, **changes)))[-1].json()
    return receipt


def at(address: str) -> dict[str, Any]:
    return {"order": {"consigneeAddress": address}, "waybill": {"consigneeAddress": address}}


async def test_r1_fires_on_the_fifth_buyer_at_one_address_and_inspects(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    # One address written four ways: the normalised address counts them together.
    spellings = [ADDRESS, "杭州市西湖区文三路8号", "浙江杭州西湖区文三路８号", "杭州西湖区 文三路8号"]
    for spelling in spellings:
        receipt = await buy(client, parties, **at(spelling))
        risk = (await official_detail(client, receipt["recordId"]))["declaration"]["risk"]
        assert (risk["decision"], risk["reasons"]) == ("release", [])
    fifth = await buy(client, parties, **at(ADDRESS))
    assert fifth["recordStatus"] == "DECLARED"
    detail = await official_detail(client, fifth["recordId"])
    risk = detail["declaration"]["risk"]
    assert risk["decision"] == "inspect"
    assert [(r["code"], r["value"]) for r in risk["reasons"]] == [("WARNING_R1", "5")]
    assert risk["levels"] == {"platform": "regular", "seller": "regular", "carrier": "regular"}
    [event] = [e for e in detail["timeline"] if e["kind"] == "risk_decision"]
    assert event["detail"] == risk
    # Elsewhere nothing fires.
    elsewhere = await buy(client, parties, **at("浙江省杭州市西湖区文三路9号"))
    assert (await official_detail(client, elsewhere["recordId"]))["declaration"]["risk"]["decision"] == "release"


async def test_r3_many_buyers_on_one_telephone(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    shared = {"consigneeTelephone": "13912345678"}
    decisions = []
    for _ in range(3):
        receipt = await buy(client, parties, order=shared, waybill=shared)
        decisions.append((await official_detail(client, receipt["recordId"]))["declaration"]["risk"])
    assert [d["decision"] for d in decisions] == ["release", "release", "inspect"]
    assert [r["code"] for r in decisions[-1]["reasons"]] == ["WARNING_R3"]


async def test_credit_level_sets_the_rate_and_enterprises_do_not_see_the_decision(
    client: httpx.AsyncClient,
) -> None:
    parties = await file_parties(client)
    credit = {"level": "dishonest", "basis": "(2026)杭关缉字第12号", "effectiveDate": "2026-12-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=credit, headers=ADMIN)).status_code == 200
    profiles = [
        {"level": "advanced_certified", "inspectionRate": "0"},
        {"level": "certified", "inspectionRate": "0"},
        {"level": "regular", "inspectionRate": "0"},
        {"level": "dishonest", "inspectionRate": "1"},
        {"level": "seriously_dishonest", "inspectionRate": "1"},
    ]
    assert (await client.put("/api/v1/risk/profiles", json={"profiles": profiles}, headers=ADMIN)).status_code == 200
    receipt = await buy(client, parties)
    risk = (await official_detail(client, receipt["recordId"]))["declaration"]["risk"]
    assert risk["decision"] == "inspect"
    assert risk["reasons"] == [{"code": "CREDIT_SAMPLED", "party": "seller", "level": "dishonest", "rate": "1"}]
    as_platform = await client.get(f"/api/v1/records/{receipt['recordId']}", headers=parties.platform)
    assert as_platform.status_code == 200
    assert as_platform.json()["declaration"]["risk"] is None
    assert "risk_decision" not in {e["kind"] for e in as_platform.json()["timeline"]}


async def test_a_blocking_level_rejects_the_declaration(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    credit = {"level": "seriously_dishonest", "basis": "严重失信认定", "effectiveDate": "2026-12-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=credit, headers=ADMIN)).status_code == 200
    profiles = [
        {"level": "advanced_certified", "inspectionRate": "0"},
        {"level": "certified", "inspectionRate": "0"},
        {"level": "regular", "inspectionRate": "0"},
        {"level": "dishonest", "inspectionRate": "0.9"},
        {"level": "seriously_dishonest", "inspectionRate": "1", "block": True},
    ]
    assert (await client.put("/api/v1/risk/profiles", json={"profiles": profiles}, headers=ADMIN)).status_code == 200
    receipt = await buy(client, parties)
    assert receipt["recordStatus"] == "REJECTED"
    detail = await official_detail(client, receipt["recordId"])
    assert detail["rejection"]["code"] == "CREDIT_BLOCKED"
    assert detail["agencies"] == {}
    assert detail["declaration"]["risk"]["decision"] == "block"
    assert [e["detail"]["event"] for e in detail["timeline"] if e["kind"] == "status_changed"][-1] == (
        "declaration_blocked"
    )


async def test_r7_many_buyers_paying_one_platform_in_one_second(settings: Settings) -> None:
    overrides = {"risk_ids_per_pay_second": 3, "risk_inspect_on_warning": True, "supervision_rate_regular": 0.0}
    async with serving(settings, **overrides) as (_, client):
        parties = await file_parties(client)
        same_second = {"payment": {"payTime": "20261111000001"}}
        decisions = []
        for _ in range(3):
            receipt = await buy(client, parties, **same_second)
            decisions.append((await official_detail(client, receipt["recordId"]))["declaration"]["risk"])
        assert [d["decision"] for d in decisions] == ["release", "release", "inspect"]
        assert [(r["code"], r["value"]) for r in decisions[-1]["reasons"]] == [("WARNING_R7", "3")]
        # The next second is not the ring.
        later = await buy(client, parties, payment={"payTime": "20261111000002"})
        assert (await official_detail(client, later["recordId"]))["declaration"]["risk"]["decision"] == "release"
        queue = (await client.get("/api/v1/risk/warnings", params={"rule": "R7"}, headers=ADMIN)).json()
        assert [w["recordId"] for w in queue["items"]] == [receipt["recordId"]]
