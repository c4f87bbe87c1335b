"""Public endpoints without a key: credit disclosure, complaints and their triage, a buyer's own quota check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.schemas import examples
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase

SELLER = "3120960A02"
REPORT = {"kind": "stolen_identity", "what": "本人未购买", "name": "王小明", "idNumber": "33010619900101123X"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    limits = {"public_complaints_per_hour": 2, "public_quota_checks_per_hour": 4, "public_quota_checks_per_id_day": 2}
    async with serving(settings, supervision_rate_regular=0.0, **limits) as (_, http):
        yield http


async def test_disclosure_has_six_categories_and_no_small_cells(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    for _ in range(4):
        await post_triple(client, parties, purchase(own_buyer=True))
    before = await client.get(f"/api/v1/public/enterprises/{SELLER}")
    assert before.status_code == 200, before.text
    body = before.json()
    assert set(body) == {"entity", "operations", "supervision", "services", "rewardsAndPenalties", "complaints"}
    [month] = body["operations"]
    assert (month["orders"], month["value"]) == (None, None)  # four buyers: fewer than five
    await post_triple(client, parties, purchase(own_buyer=True))
    [month] = (await client.get(f"/api/v1/public/enterprises/{SELLER}")).json()["operations"]
    assert month["orders"] == 5
    assert month["value"] == "1000"  # 5 × 200.00, rounded to the thousand
    credit = {"level": "certified", "basis": "AEO 认证", "effectiveDate": "2026-11-01"}
    assert (await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=credit, headers=ADMIN)).status_code == 200
    after = (await client.get(f"/api/v1/public/enterprises/{SELLER}")).json()
    assert after["supervision"] == {"creditLevel": "certified", "creditLevelZh": "认证企业", "since": "2026-11-01"}
    assert after["rewardsAndPenalties"][0]["basis"] == "AEO 认证"
    assert after["services"] == {"goodsRecords": 1}
    assert after["entity"]["name"]
    text = (await client.get(f"/api/v1/public/enterprises/{SELLER}")).text
    assert "330106" not in text  # no ID number, address or telephone of any buyer
    assert "139" not in text
    assert (await client.get("/api/v1/public/enterprises/9999999999")).status_code == 404


async def test_complaints_are_rate_limited_and_triaged(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    filed = await client.post("/api/v1/public/complaints", json=REPORT | {"platformCode": "3120960A01"})
    assert filed.status_code == 201, filed.text
    assert (await client.post("/api/v1/public/complaints", json=REPORT)).status_code == 201
    limited = await client.post("/api/v1/public/complaints", json=REPORT)
    assert (limited.status_code, limited.json()["code"]) == (429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) > 0
    assert (await client.post("/api/v1/public/complaints", json={"kind": "x", "what": "y"})).status_code in (422, 429)

    assert (await client.get("/api/v1/complaints", headers=parties.seller)).status_code == 403
    queue = (await client.get("/api/v1/complaints", params={"status": "received"}, headers=ADMIN)).json()
    assert [c["id"] for c in queue["items"]] == [filed.json()["id"], filed.json()["id"] + 1]
    triage = {"status": "upheld", "enterpriseCode": SELLER, "recordIds": [receipt["recordId"]], "note": "属实"}
    triaged = await client.post(f"/api/v1/complaints/{filed.json()['id']}/triage", json=triage, headers=ADMIN)
    assert triaged.status_code == 200, triaged.text
    assert (triaged.json()["status"], triaged.json()["recordIds"]) == ("upheld", [receipt["recordId"]])
    timeline = (await client.get(f"/api/v1/records/{receipt['recordId']}", headers=ADMIN)).json()["timeline"]
    assert "complaint_linked" in {e["kind"] for e in timeline}
    risk = (await client.get(f"/api/v1/enterprises/{SELLER}/risk", headers=ADMIN)).json()
    assert risk["localScore"] == 90  # one upheld complaint
    public = (await client.get(f"/api/v1/public/enterprises/{SELLER}")).json()
    assert public["complaints"] == {"upheld": 1}
    missing = await client.post("/api/v1/complaints/999/triage", json=triage, headers=ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (404, "COMPLAINT_NOT_FOUND")


async def test_quota_check_needs_all_three_and_is_masked_and_limited(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order = examples.ORDER
    triple = purchase()
    receipt = (await post_triple(client, parties, triple))[-1].json()
    assert receipt["recordStatus"] == "DECLARED"
    mine = {"idNumber": order["buyerIdNumber"], "name": order["buyerName"], "telephone": "+86 138-0013-8000"}
    answer = await client.post("/api/v1/public/quota-check", json=mine)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert (body["idNumber"], body["used"], body["remaining"]) == ("330106********123X", "200.00", "25800.00")
    [declared] = body["declarations"]
    order_no = triple[0]["orderNo"]
    assert declared["orderNo"] == order_no[:4] + "*" * (len(order_no) - 8) + order_no[-4:]
    assert declared["platform"] == examples.ENTERPRISES[0]["name"]
    assert (await client.post("/api/v1/public/quota-check", json=mine)).status_code == 200
    per_id = await client.post("/api/v1/public/quota-check", json=mine)  # a third check of this ID today
    assert (per_id.status_code, per_id.json()["code"]) == (429, "RATE_LIMITED")
    other = mine | {"idNumber": "11010519491231002X"}
    assert (await client.post("/api/v1/public/quota-check", json=other)).status_code == 404  # nothing stored
    per_client = await client.post("/api/v1/public/quota-check", json=other | {"name": "x"})  # fifth from here
    assert per_client.status_code == 429


async def test_quota_check_misses_are_all_the_same_404(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    await post_triple(client, parties, purchase())
    order = examples.ORDER
    wrong_phone = {"idNumber": order["buyerIdNumber"], "name": order["buyerName"], "telephone": "13900000000"}
    wrong_name = {"idNumber": order["buyerIdNumber"], "name": "李四", "telephone": "13800138000"}
    answers = [await client.post("/api/v1/public/quota-check", json=b) for b in (wrong_phone, wrong_name)]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "NOT_FOUND"), (404, "NOT_FOUND")]
    assert answers[0].json()["detail"] == answers[1].json()["detail"]
