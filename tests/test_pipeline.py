"""The staged pipeline through HTTP: acceptance at once (returnStatus 2), the business result from the
match stage (120 / 100), ``Prefer: wait``, receipts over time, dead submissions, backlogs and the feed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.config import Settings
from app.matcher import Matcher
from app.models import MatchRecord, Submission
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, purchase

PATHS = {"order": "/api/v1/orders", "payment": "/api/v1/payments", "waybill": "/api/v1/waybills"}


def _matcher(app: FastAPI) -> Matcher:
    return Matcher(app.state.sessionmaker, app.state.settings)


async def _count(app: FastAPI, *where: Any) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Submission).where(*where)) or 0)


async def _post_triple(http: httpx.AsyncClient, parties: Parties, triple: Any, **kw: Any) -> list[httpx.Response]:
    order, payment, waybill = triple
    return [
        await http.post(PATHS["order"], json=order, headers=parties.platform | kw),
        await http.post(PATHS["payment"], json=payment, headers=parties.payment | kw),
        await http.post(PATHS["waybill"], json=waybill, headers=parties.logistics | kw),
    ]


async def test_a_document_is_accepted_at_once_and_its_business_result_follows(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        order, payment, waybill = purchase()
        answers = await _post_triple(http, parties, (order, payment, waybill))
        for answer in answers:
            assert answer.status_code == 202, answer.text
            body = answer.json()
            assert body["returnStatus"] == "2"
            assert body["returnInfo"].startswith("电子口岸申报中")
            assert body["recordId"] is None
            assert "Preference-Applied" not in answer.headers
        assert await _count(app, Submission.state == "pending") == 3
        # Nothing is matched until the match stage runs.
        async with app.state.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(MatchRecord)) == 0

        assert await _matcher(app).drain() == 3
        assert await _count(app, Submission.state == "done", Submission.outcome == "stored") == 3
        found = await http.get("/api/v1/records", params={"orderNo": order["orderNo"]}, headers=ADMIN)
        [record] = found.json()["items"]
        assert record["status"] == "DECLARED"
        detail = (await http.get(f"/api/v1/records/{record['id']}", headers=ADMIN)).json()
        receipts = [(r["documentType"], r["returnStatus"]) for r in detail["documentReceipts"]]
        for doc_type in ("order", "payment", "waybill"):
            mine = [status for kind, status in receipts if kind == doc_type]
            assert mine == ["2", "120"], receipts


async def test_prefer_wait_answers_with_the_business_result(settings: Settings) -> None:
    async with serving(settings, wait=False) as (_, http):
        parties = await file_parties(http)
        answers = await _post_triple(http, parties, purchase(), Prefer="wait=10")
        assert [a.status_code for a in answers] == [201, 201, 201]
        assert all(a.headers["Preference-Applied"] == "wait=10" for a in answers)
        last = answers[-1].json()
        assert last["returnStatus"] == "120"
        assert last["recordStatus"] == "DECLARED"
        assert last["submissionSeq"] > 0


async def test_a_wait_beyond_thirty_seconds_is_capped(settings: Settings) -> None:
    async with serving(settings, wait=False) as (_, http):
        parties = await file_parties(http)
        order, _, _ = purchase()
        answer = await http.post(PATHS["order"], json=order, headers=parties.platform | {"Prefer": "wait=600"})
        assert answer.status_code == 201, answer.text
        assert answer.headers["Preference-Applied"] == "wait=30"


async def test_waiting_ends_after_n_seconds_with_the_acceptance(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (_, http):
        parties = await file_parties(http)
        order, _, _ = purchase()
        answer = await http.post(PATHS["order"], json=order, headers=parties.platform | {"Prefer": "wait=1"})
        assert answer.status_code == 202
        assert answer.json()["returnStatus"] == "2"
        assert answer.headers["Preference-Applied"] == "wait=1"


async def test_the_same_content_again_is_the_original_acceptance_and_no_new_row(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        order, _, _ = purchase()
        first = await http.post(PATHS["order"], json=order, headers=parties.platform)
        again = await http.post(
            PATHS["order"], json=order | {"guid": "D2C5D8A6-1111-4D6B-8B3A-000000000001"}, headers=parties.platform
        )
        assert first.status_code == 202
        assert again.status_code == 200
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["submissionSeq"] == first.json()["submissionSeq"]
        assert await _count(app) == 1
        await _matcher(app).drain()
        # Once processed, the replay still adds nothing; other content with appType 1 is refused at once.
        assert (await http.post(PATHS["order"], json=order, headers=parties.platform)).status_code == 200
        changed = await http.post(PATHS["order"], json=order | {"buyerName": "王五"}, headers=parties.platform)
        assert changed.status_code == 409
        assert changed.json()["code"] == "DUPLICATE_DIFFERENT_CONTENT"
        assert changed.json()["cebReturnStatus"] == "-301010"
        assert await _count(app) == 1


async def test_a_batch_repeating_a_document_accepts_it_once(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        order, _, _ = purchase()
        answer = await http.post(f"{PATHS['order']}/batch", json={"items": [order, order]}, headers=parties.platform)
        assert answer.status_code == 200, answer.text
        first, second = answer.json()["items"]
        assert (first["status"], second["status"]) == (202, 200)
        assert second["receipt"]["submissionSeq"] == first["receipt"]["submissionSeq"]
        assert answer.json()["summary"]["accepted"] == 1
        assert await _count(app) == 1


async def test_a_change_after_declaration_is_refused_with_the_spec_code(settings: Settings) -> None:
    async with serving(settings, wait=False) as (app, http):
        parties = await file_parties(http)
        order, payment, waybill = purchase()
        await _post_triple(http, parties, (order, payment, waybill), Prefer="wait=10")
        change = order | {"appType": "2", "buyerName": "王五"}
        # Without waiting: accepted, then refused by the match stage (100, -301011).
        accepted = await http.post(PATHS["order"], json=change, headers=parties.platform)
        assert accepted.status_code == 202
        seq = accepted.json()["submissionSeq"]
        for _ in range(100):
            if await _count(app, Submission.seq == seq, Submission.state == "done"):
                break
            await asyncio.sleep(0.05)
        found = await http.get("/api/v1/records", params={"orderNo": order["orderNo"]}, headers=ADMIN)
        detail = (await http.get(f"/api/v1/records/{found.json()['items'][0]['id']}", headers=ADMIN)).json()
        refused = [r for r in detail["documentReceipts"] if r["submissionSeq"] == seq]
        assert [r["returnStatus"] for r in refused] == ["2", "100"]
        assert refused[1]["code"] == "RECORD_ALREADY_DECLARED"
        assert refused[1]["cebReturnStatus"] == "-301011"
        # Waiting: the same refusal as the answer.
        payment_change = payment | {"appType": "2", "payerName": "王五"}
        waited = await http.post(PATHS["payment"], json=payment_change, headers=parties.payment | {"Prefer": "wait=10"})
        assert waited.status_code == 409
        assert waited.json()["cebReturnStatus"] == "-401008"


async def test_a_poison_submission_goes_dead_alone_and_can_be_retried(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        good, poison = purchase(), purchase()
        await _post_triple(http, parties, good)
        bad = await http.post(PATHS["order"], json=poison[0], headers=parties.platform)
        seq = bad.json()["submissionSeq"]
        async with app.state.sessionmaker() as session, session.begin():
            row = await session.get(Submission, seq)
            assert row is not None
            original = dict(row.payload)
            await session.execute(
                update(Submission).where(Submission.seq == seq).values(payload=original | {"orderList": "broken"})
            )
        await _matcher(app).drain()
        assert await _count(app, Submission.state == "done") == 3
        listed = await http.get("/api/v1/admin/submissions", params={"state": "dead"}, headers=ADMIN)
        [dead] = listed.json()["items"]
        assert dead["seq"] == seq
        assert "orderList" in dead["error"]
        ready = (await http.get("/readyz")).json()
        assert ready["stages"]["match"]["dead"] == 1
        # The cause fixed, an admin sends it round again.
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(update(Submission).where(Submission.seq == seq).values(payload=original))
        retried = await http.post(f"/api/v1/admin/submissions/{seq}/retry", headers=ADMIN)
        assert retried.status_code == 200, retried.text
        assert retried.json()["state"] == "pending"
        again = await http.post(f"/api/v1/admin/submissions/{seq}/retry", headers=ADMIN)
        assert again.status_code == 409
        await _matcher(app).drain()
        assert await _count(app, Submission.state == "done") == 4


async def test_readyz_and_metrics_show_each_stages_backlog(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        await _post_triple(http, parties, purchase())
        ready = (await http.get("/readyz")).json()
        assert ready["stages"]["match"]["backlog"] == 3
        assert ready["stages"]["match"]["oldestAgeSeconds"] >= 0
        metrics = (await http.get("/metrics", headers=ADMIN)).text
        assert 'sw_stage_backlog{stage="match"} 3.0' in metrics
        await _matcher(app).drain()
        ready = (await http.get("/readyz")).json()
        assert ready["stages"]["match"] == {"backlog": 0, "oldestAgeSeconds": 0.0, "dead": 0}
        assert ready["stages"]["dispatch"]["backlog"] == 4  # one declaration to four agencies


async def test_the_feed_carries_receipts_and_status_changes_in_order_from_a_cursor(settings: Settings) -> None:
    async with serving(settings) as (_, http):
        parties = await file_parties(http)
        await _post_triple(http, parties, purchase())
        # The feed shows a transaction's events once every transaction that began before it has ended (it may
        # lag, never skip): a transaction elsewhere on the server — another database's — can hold them back a
        # moment. Wait until the matcher's last events show, then read in pages.
        for _ in range(200):
            whole = (await http.get("/api/v1/feed", params={"limit": 1000}, headers=ADMIN)).json()["items"]
            if [e["kind"] for e in whole].count("document_receipt") == 3:
                break
            await asyncio.sleep(0.05)
        first = await http.get("/api/v1/feed", params={"limit": 2}, headers=ADMIN)
        assert first.status_code == 200, first.text
        page = first.json()
        rest = (
            await http.get("/api/v1/feed", params={"after": page["nextCursor"], "limit": 1000}, headers=ADMIN)
        ).json()
        events = page["items"] + rest["items"]
        kinds = [e["kind"] for e in events]
        assert kinds.count("document_receipt") == 3
        changes = [(e["detail"]["from"], e["detail"]["to"]) for e in events if e["kind"] == "status_changed"]
        assert changes[-2:] == [("AWAITING_DOCUMENTS", "MATCHED"), ("MATCHED", "DECLARED")]
        positions = [tuple(map(int, e["position"].split("."))) for e in events]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)
        # Read on from the end: nothing new, the same cursor back.
        end = (await http.get("/api/v1/feed", params={"after": rest["nextCursor"]}, headers=ADMIN)).json()
        assert end == {"items": [], "nextCursor": rest["nextCursor"]}
        assert (await http.get("/api/v1/feed", params={"after": "x"}, headers=ADMIN)).status_code == 422
        # An enterprise reads its own part of the feed (tests/notify/test_enterprise_feed.py).
        assert (await http.get("/api/v1/feed", headers=parties.platform)).status_code == 200


async def test_receipts_over_time_as_ceb_messages(settings: Settings) -> None:
    from app.ceb import safe_xml

    ns = {"c": "http://www.chinaport.gov.cn/ceb"}
    async with serving(settings, embedded_dispatcher=True, supervision_rate_regular=0.0, dispatch_poll_s=0.05) as (
        _,
        http,
    ):
        parties = await file_parties(http)
        order, payment, waybill = purchase()
        answers = await _post_triple(http, parties, (order, payment, waybill))
        record_id = answers[-1].json()["recordId"]
        refused = await http.post(PATHS["order"], json=order | {"appType": "2", "note": "改"}, headers=parties.platform)
        assert refused.status_code == 409
        for _ in range(200):
            record = (await http.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
            if record["status"] == "CLEARED":
                break
            await asyncio.sleep(0.05)
        assert record["status"] == "CLEARED"

        orders = await http.get(f"/api/v1/records/{record_id}/receipts/order", headers=ADMIN)
        assert orders.status_code == 200
        assert orders.headers["content-type"].startswith("application/xml")
        root = safe_xml.parse(orders.content)
        assert safe_xml.validate(root, "CEB312.xsd") == []
        statuses = [e.text for e in root.iterfind("c:OrderReturn/c:returnStatus", ns)]
        assert statuses == ["2", "120", "2", "-301011"]
        times = [e.text for e in root.iterfind("c:OrderReturn/c:returnTime", ns)]
        assert times == sorted(times)
        again = await http.get(f"/api/v1/records/{record_id}/receipts/order", headers=ADMIN)
        assert again.content == orders.content  # the same receipts, byte for byte

        inventory = await http.get(f"/api/v1/records/{record_id}/receipts/inventory", headers=ADMIN)
        root = safe_xml.parse(inventory.content)
        assert safe_xml.validate(root, "CEB622.xsd") == []
        assert [e.text for e in root.iterfind("c:InventoryReturn/c:returnStatus", ns)][-1] == "800"
        # The carrier sees its waybill's receipts, not the inventory's (it carries the buyer's ID).
        assert (
            await http.get(f"/api/v1/records/{record_id}/receipts/waybill", headers=parties.logistics)
        ).status_code == 200
        hidden = await http.get(f"/api/v1/records/{record_id}/receipts/inventory", headers=parties.logistics)
        assert hidden.status_code == 404


async def test_a_submission_number_beyond_bigint_is_refused_not_a_500(client: httpx.AsyncClient) -> None:
    # Found by the fuzzing soak on PostgreSQL: 2**63 reached asyncpg, which refused to send it (500).
    retry = await client.post(f"/api/v1/admin/submissions/{2**63}/retry", headers=ADMIN)
    assert retry.status_code == 422, retry.text
    listed = await client.get("/api/v1/admin/submissions", params={"after": 2**63}, headers=ADMIN)
    assert listed.status_code == 422, listed.text
    missing = await client.post(f"/api/v1/admin/submissions/{2**63 - 1}/retry", headers=ADMIN)
    assert missing.status_code == 404, missing.text
