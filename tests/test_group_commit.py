"""Group commit: single documents of one sender that arrive together share a transaction, and each request still
gets exactly the answer it would have had alone, after its own document is committed."""

from __future__ import annotations

import asyncio
import re

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from tests.conftest import ADMIN, _wipe
from tests.factories import file_parties, purchase


def _grouped(metrics_text: str) -> tuple[float, float]:
    """(requests, transactions) of the group-commit histogram."""
    total = re.search(r"^sw_group_commit_documents_sum ([0-9.e+]+)$", metrics_text, re.M)
    count = re.search(r"^sw_group_commit_documents_count ([0-9.e+]+)$", metrics_text, re.M)
    assert total is not None, metrics_text[:500]
    assert count is not None, metrics_text[:500]
    return float(total.group(1)), float(count.group(1))


async def test_concurrent_single_orders_share_transactions_and_keep_their_own_answers(
    client: httpx.AsyncClient,
) -> None:
    parties = await file_parties(client)
    orders = [purchase(own_buyer=True)[0] for _ in range(30)]
    responses = await asyncio.gather(
        *(client.post("/api/v1/orders", json=order, headers=parties.platform) for order in orders)
    )
    assert [r.status_code for r in responses] == [201] * 30, [r.text for r in responses if r.status_code != 201]
    for order, response in zip(orders, responses, strict=True):
        receipt = response.json()
        assert receipt["key"] == {"ebpCode": order["ebpCode"], "orderNo": order["orderNo"]}
        stored = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=ADMIN)
        assert stored.status_code == 200
        assert stored.json()["document"]["guid"] == receipt["guid"]
    requests, transactions = _grouped((await client.get("/metrics")).text)
    assert requests == 30
    assert transactions < 30, "30 requests at once should have shared transactions"


async def test_each_request_of_a_group_keeps_its_own_raw_message_and_errors(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    taken = purchase(own_buyer=True)[0]
    assert (await client.post("/api/v1/orders", json=taken, headers=parties.platform)).status_code == 201
    clash = taken | {"goodsValue": "1.00"}  # same key, other content: 409 for this request only
    fresh = [purchase(own_buyer=True)[0] for _ in range(10)]
    bodies = [*fresh[:5], clash, *fresh[5:]]
    responses = await asyncio.gather(
        *(client.post("/api/v1/orders", json=body, headers=parties.platform) for body in bodies)
    )
    statuses = [r.status_code for r in responses]
    assert statuses == [201] * 5 + [409] + [201] * 5, [r.text for r in responses]
    assert responses[5].json()["code"] == "DUPLICATE_DIFFERENT_CONTENT"
    # Every accepted request's timeline points at the raw body of that request, not of its neighbours.
    raw_ids = set()
    for body, response in zip(bodies, responses, strict=True):
        if response.status_code != 201:
            continue
        record = await client.get(f"/api/v1/records/{response.json()['recordId']}", headers=ADMIN)
        received = [e for e in record.json()["timeline"] if e["kind"] == "document_received"]
        assert len(received) == 1
        raw_ids.add(received[0]["detail"]["rawMessageId"])
        assert received[0]["detail"]["key"]["orderNo"] == body["orderNo"]
    assert len(raw_ids) == 10


async def test_a_client_that_goes_away_does_not_take_its_group_down(app: FastAPI, client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    orders = [purchase(own_buyer=True)[0] for _ in range(12)]
    tasks = [asyncio.create_task(client.post("/api/v1/orders", json=o, headers=parties.platform)) for o in orders]
    await asyncio.sleep(0)
    tasks[0].cancel()  # the first request (the one whose arrival started the writer) is abandoned
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert all(isinstance(o, httpx.Response) and o.status_code == 201 for o in outcomes[1:]), outcomes
    await app.state.group_commit.close()


async def test_without_group_commit_each_request_is_its_own_transaction(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"group_commit": False}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            try:
                parties = await file_parties(http)
                orders = [purchase(own_buyer=True)[0] for _ in range(5)]
                responses = await asyncio.gather(
                    *(http.post("/api/v1/orders", json=o, headers=parties.platform) for o in orders)
                )
                assert [r.status_code for r in responses] == [201] * 5
                assert _grouped((await http.get("/metrics")).text) == (0, 0)
            finally:
                await _wipe(application)
