"""The feed pulled by enterprises: only the events of records they are party to, masked as their role sees
records; a long-poll ``wait``; the CEB receipts as XML."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from app.config import Settings
from app.schemas import examples
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_enterprise, file_parties, post_triple, purchase

UNRELATED = "3120960X01"


async def read_all(http: httpx.AsyncClient, headers: dict[str, str], expect: int) -> list[dict[str, Any]]:
    """The caller's whole feed once it holds ``expect`` events (on PostgreSQL the feed may lag a moment behind
    a commit while another transaction is open: ``wait`` holds the read until something shows)."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(30):
        params: dict[str, Any] = {"limit": 1000, "wait": 1}
        if cursor:
            params["after"] = cursor
        page = (await http.get("/api/v1/feed", params=params, headers=headers)).json()
        items += page["items"]
        cursor = page["nextCursor"]
        if len(items) >= expect:
            return items
    raise AssertionError(f"only {len(items)} of {expect} events")


async def matched_purchase(http: httpx.AsyncClient) -> Parties:
    parties = await file_parties(http)
    for answer in await post_triple(http, parties, purchase()):
        assert answer.status_code == 201, answer.text
    return parties


async def test_each_party_reads_its_own_events_masked_as_its_role_sees_the_record(settings: Settings) -> None:
    async with serving(settings) as (_, http):
        parties = await matched_purchase(http)
        everything = await read_all(http, ADMIN, 3 + 2)
        platform = await read_all(http, parties.platform, 3 + 2)
        carrier = await read_all(http, parties.logistics, 1 + 2)

        # The platform owns the purchase: every document's receipt and every status change, whole.
        assert [e["position"] for e in platform] == [e["position"] for e in everything if e["recordId"]]
        assert [e["detail"] for e in platform] == [e["detail"] for e in everything if e["recordId"]]
        # The carrier: its own waybill's receipt and the record's status changes, without free text.
        receipts = [e for e in carrier if e["kind"] == "document_receipt"]
        assert [r["detail"]["documentType"] for r in receipts] == ["waybill"]
        assert all("returnInfo" not in e["detail"] for e in carrier)
        changes = [(e["detail"]["from"], e["detail"]["to"]) for e in carrier if e["kind"] == "status_changed"]
        assert changes[-2:] == [("AWAITING_DOCUMENTS", "MATCHED"), ("MATCHED", "DECLARED")]

        stranger = await file_enterprise(http, UNRELATED, "无关企业", ["platform"])
        page = (await http.get("/api/v1/feed", params={"limit": 1000}, headers=stranger)).json()
        assert page["items"] == []


async def test_a_refused_document_s_receipt_reaches_its_sender(settings: Settings) -> None:
    async with serving(settings) as (_, http):
        parties = await file_parties(http)
        order, _, _ = purchase()
        # A change (appType 2) of an order never stored: refused by the match stage, no document row.
        refused = await http.post("/api/v1/orders", json=order | {"appType": "2"}, headers=parties.platform)
        assert refused.status_code == 404, refused.text
        [receipt] = await read_all(http, parties.platform, 1)
        assert receipt["kind"] == "document_receipt"
        assert receipt["detail"]["returnStatus"] == "100"
        carrier = (await http.get("/api/v1/feed", headers=parties.logistics)).json()
        assert carrier["items"] == []


async def test_wait_holds_the_answer_until_the_next_event(settings: Settings) -> None:
    async with serving(settings, wait=False) as (_, http):
        parties = await file_parties(http)
        cursor = (await http.get("/api/v1/feed", headers=parties.platform)).json()["nextCursor"]
        empty = await http.get("/api/v1/feed", params={"after": cursor}, headers=parties.platform)
        assert empty.json()["items"] == []
        waiting = asyncio.create_task(
            http.get("/api/v1/feed", params={"after": cursor, "wait": 30}, headers=parties.platform)
        )
        await asyncio.sleep(0.3)  # the long poll has looked once and is waiting
        assert not waiting.done()
        order, _, _ = purchase()
        assert (await http.post("/api/v1/orders", json=order, headers=parties.platform)).status_code == 202
        page = (await waiting).json()
        assert [e["kind"] for e in page["items"]][:1] == ["document_receipt"]
        too_long = await http.get("/api/v1/feed", params={"wait": 31}, headers=parties.platform)
        assert too_long.status_code == 422


async def test_receipts_as_ceb_xml(settings: Settings) -> None:
    async with serving(settings) as (_, http):
        parties = await matched_purchase(http)
        await read_all(http, parties.platform, 5)
        answer = await http.get(
            "/api/v1/feed", params={"limit": 1000}, headers=parties.platform | {"Accept": "application/xml"}
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/xml")
        text = answer.text
        for message in ("CEB312Message", "CEB412Message", "CEB512Message"):
            assert f"<{message} " in text, text
        assert examples.ORDER["orderNo"] in text or "<orderNo>" in text
        assert text.count("<Event ") == 3
