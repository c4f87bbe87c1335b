"""``POST /mock/{agency}/declarations/batch``: a result per declaration by the same rules, dedupe on each
one's dispatchId, faults per call, a release callback per held declaration."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx

from tests.mock_agencies.conftest import AgencyClientFactory
from tests.mock_agencies.packages import INSPECT, package
from tests.mock_agencies.test_api import PASSES_INSPECTION, SingleWindow, declare, stats, verify


async def batch(http: httpx.AsyncClient, agency: str, declarations: list[Any]) -> httpx.Response:
    return await http.post(f"/mock/{agency}/declarations/batch", json={"declarations": declarations})


def slot_statuses(response: httpx.Response) -> list[list[str] | int]:
    """Each slot's receipts' returnStatus, or its problem status."""
    assert response.status_code == 200, response.text
    return [
        [r["returnStatus"] for r in item["receipts"]] if item["status"] == 200 else item["status"]
        for item in response.json()["results"]
    ]


async def test_a_batch_is_one_call_with_an_answer_per_declaration_in_order(
    agencies_client: AgencyClientFactory,
) -> None:
    async with agencies_client() as (http, _):
        declarations = [
            package("customs", record_id=PASSES_INSPECTION),
            package("customs", inventory={"tradeMode": "0110"}),
        ]
        response = await batch(http, "customs", declarations)
        assert response.json()["agency"] == "customs"
        assert [r["dispatchId"] for r in response.json()["results"]] == [d["dispatchId"] for d in declarations]
        assert slot_statuses(response) == [["120", "399", "800"], ["100"]]
        assert "tradeMode" in response.json()["results"][1]["receipts"][0]["returnInfo"]
        counted = await stats(http, "customs")
        assert (counted["requests"], counted["batchRequests"], counted["answered"]) == (1, 1, 2)

        # The same answer as the single route gives for that declaration (tax bill included).
        single, in_batch = package("tax"), package("tax")
        alone = (await declare(http, "tax", single)).json()
        together = (await batch(http, "tax", [in_batch])).json()["results"][0]
        assert together["status"] == 200
        assert together["taxBill"]["taxListRd"] == alone["taxBill"]["taxListRd"]
        assert together["taxBill"]["taxHeadRd"]["taxTotal"] == alone["taxBill"]["taxHeadRd"]["taxTotal"] == "46.12"
        assert statuses_of(together) == statuses_of(alone) == ["120"]


def statuses_of(answer: dict[str, Any]) -> list[str]:
    return [r["returnStatus"] for r in answer["receipts"]]


async def test_the_rules_apply_in_order_inside_a_batch(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        purchases = []
        for _ in range(6):  # 6 × 5,000.00 for one buyer: the sixth is over the 26,000.00 annual limit
            body = package("tax", inventory={"declTime": "20260601"})
            body["inventory"]["inventoryList"][0].update(price="5000.00", totalPrice="5000.00")
            purchases.append(body)
        response = await batch(http, "tax", purchases)
        assert slot_statuses(response) == [["120"]] * 5 + [["100"]]
        assert "-621018" in response.json()["results"][5]["receipts"][0]["returnInfo"]


async def test_each_declaration_is_deduped_on_its_dispatch_id(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        first, second, third = package("fx"), package("fx"), package("fx")
        once = await batch(http, "fx", [first, second])
        alone = await declare(http, "fx", third)
        # Retried, regrouped: the known declarations get their first answers again, unchanged.
        again = await batch(http, "fx", [second, third, first])
        by_key = {r["dispatchId"]: r for r in again.json()["results"]}
        assert [by_key[d["dispatchId"]] for d in (first, second)] == once.json()["results"]
        assert {k: v for k, v in by_key[third["dispatchId"]].items() if k != "status"} == alone.json()
        counted = await stats(http, "fx")
        assert (counted["answered"], counted["replays"], counted["requests"], counted["batchRequests"]) == (3, 3, 3, 2)
        answers = {a["idempotencyKey"]: a["deliveries"] for a in (await http.get("/mock/fx/answers")).json()}
        assert answers == {first["dispatchId"]: 2, second["dispatchId"]: 2, third["dispatchId"]: 2}


async def test_a_declaration_that_cannot_be_processed_fails_in_its_slot_only(
    agencies_client: AgencyClientFactory,
) -> None:
    async with agencies_client() as (http, _):
        good, no_key = package("fx"), package("fx")
        del no_key["dispatchId"]
        declarations = [good, package("fx", recordId=None), no_key, package("tax"), "not an object"]
        response = await batch(http, "fx", declarations)
        assert slot_statuses(response) == [["120"], 422, 400, 422, 400]
        results = response.json()["results"]
        assert results[1]["code"] == "MALFORMED_PACKAGE"
        assert "recordId" in results[1]["detail"]
        assert results[2]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
        assert "sent to 'fx'" in results[3]["detail"]
        assert (await stats(http, "fx"))["answered"] == 1  # refused slots are not recorded


async def test_a_malformed_batch_is_refused_whole(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        for content in ("{not json", "[]", '{"declarations": []}', json.dumps({"declarations": [package("fx")] * 101})):
            response = await http.post(
                "/mock/fx/declarations/batch", content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, content[:40]
            assert response.headers["content-type"] == "application/problem+json"
        counted = await stats(http, "fx")
        assert (counted["requests"], counted["answered"]) == (4, 0)


async def test_faults_apply_to_the_whole_call_and_nothing_of_it_is_recorded(
    agencies_client: AgencyClientFactory,
) -> None:
    async with agencies_client(mock_failure_rate=1.0, mock_hang_s=0.001) as (http, agencies):
        declarations = [package("fx") for _ in range(5)]
        failed = [await batch(http, "fx", declarations) for _ in range(6)]
        assert {r.status_code for r in failed} <= {429, 503, 504}
        counted = await stats(http, "fx")
        assert counted["answered"] == 0
        assert sum(counted["faults"].values()) == 6  # one fault per call, not per declaration
        throttled = next((r for r in failed if r.status_code == 429), None)
        if throttled is not None:
            assert throttled.headers["Retry-After"] == "1"
        agencies.settings.mock_failure_rate = 0.0
        assert slot_statuses(await batch(http, "fx", declarations)) == [["120"]] * 5
        assert (await stats(http, "fx"))["replays"] == 0  # the first answers


async def test_the_fault_draws_are_per_call(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client(mock_seed=42, mock_failure_rate=0.3, mock_hang_s=0.001) as (http, _):
        codes = Counter([(await batch(http, "fx", [package("fx") for _ in range(3)])).status_code for _ in range(60)])
        counted = await stats(http, "fx")
        assert counted["answered"] == 3 * codes[200]
        assert sum(counted["faults"].values()) == 60 - codes[200] > 0


async def test_each_held_declaration_gets_its_signed_release_callback(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow()
    settings = {"agency_callback_secret": "test-callback-secret", "mock_inspection_delay_ms": 0}
    async with agencies_client(httpx.MockTransport(receiver), **settings) as (http, agencies):
        held = [package("customs", riskDecision=INSPECT) for _ in range(2)]
        passing = package("customs", record_id=PASSES_INSPECTION)
        response = await batch(http, "customs", [held[0], passing, held[1]])
        assert slot_statuses(response) == [["120", "500"], ["120", "399", "800"], ["120", "500"]]
        await agencies.wait_for_callbacks()
        sent = sorted((verify(r)["dispatchId"], r.headers["webhook-id"]) for r in receiver.requests)
        assert [key for key, _ in sent] == sorted(d["dispatchId"] for d in held)
        assert len({webhook_id for _, webhook_id in sent}) == 2
        await batch(http, "customs", held)  # pushed again: the same answers, no second callback
        await agencies.wait_for_callbacks()
        assert len(receiver.requests) == 2
