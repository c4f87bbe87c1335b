"""Record queries through HTTP: every filter of GET /records, cursor pagination, the record detail with its
documents and timeline, and the documents by natural key."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from app.schemas import examples
from tests.conftest import ADMIN
from tests.factories import Parties, file_enterprise, file_parties, post_triple, purchase

PLATFORM, SELLER, PAYMENT_FIRM, CARRIER = (e["code"] for e in examples.ENTERPRISES)
PLATFORM2 = "3120960A09"
SELLER2 = "3120960A03"
PROBLEM_JSON = "application/problem+json"

Triple = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, value
    assert moment.utcoffset() == timedelta(0), value
    return moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def records(client: httpx.AsyncClient, headers: dict[str, str] = ADMIN, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/records", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["nextCursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def record_orders(client: httpx.AsyncClient, **params: Any) -> set[str]:
    return {r["orderNo"] for r in await records(client, **params)}


@dataclass
class Dataset:
    parties: Parties
    platform2: dict[str, str]
    matched: Triple
    mismatched: Triple
    order_only: Triple  # the order, and (after the midpoint) its payment
    other_seller: Triple  # order + payment, seller 2, after the midpoint
    other_platform: Triple  # platform 2's order, after the midpoint
    midpoint: datetime
    ids: dict[str, str]  # orderNo -> record id


@pytest.fixture
async def dataset(client: httpx.AsyncClient) -> Dataset:
    """Five purchases: matched, mismatched, awaiting (three kinds); three created before `midpoint`."""
    parties = await file_parties(client)
    platform2 = await file_enterprise(client, PLATFORM2, "第二平台", ["platform"])
    await file_enterprise(client, SELLER2, "第二电商企业", ["seller"])
    matched = purchase()
    mismatched = purchase(payment={"amountPaid": "240.00"})
    order_only = purchase(
        order={"buyerIdNumber": "110101199003070003", "buyerName": "赵六"},
        payment={"payerIdNumber": "110101199003070003", "payerName": "赵六"},
    )
    other_seller = purchase(order={"ebcCode": SELLER2, "ebcName": "第二电商企业"})
    other_platform = purchase(order={"ebpCode": PLATFORM2, "ebpName": "第二平台"})
    ids: dict[str, str] = {}

    for triple in (matched, mismatched):
        responses = await post_triple(client, parties, triple)
        assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
        ids[triple[0]["orderNo"]] = responses[-1].json()["recordId"]
    assert responses[-1].json()["recordStatus"] == "MISMATCHED"
    response = await client.post("/api/v1/orders", json=order_only[0], headers=parties.platform)
    ids[order_only[0]["orderNo"]] = response.json()["recordId"]

    midpoint = datetime.now(UTC)
    # Let the clock move on, so that nothing below shares the midpoint's microsecond.
    while datetime.now(UTC) <= midpoint:
        pass

    response = await client.post("/api/v1/payments", json=order_only[1], headers=parties.payment)
    assert response.json()["recordStatus"] == "AWAITING_DOCUMENTS"
    assert response.json()["missing"] == ["waybill"]
    for document, path in ((other_seller[0], "orders"), (other_seller[1], "payments")):
        headers = parties.platform if path == "orders" else parties.payment
        response = await client.post(f"/api/v1/{path}", json=document, headers=headers)
        assert response.status_code == 201, response.text
    ids[other_seller[0]["orderNo"]] = response.json()["recordId"]
    response = await client.post("/api/v1/orders", json=other_platform[0], headers=platform2)
    assert response.status_code == 201, response.text
    ids[other_platform[0]["orderNo"]] = response.json()["recordId"]
    return Dataset(parties, platform2, matched, mismatched, order_only, other_seller, other_platform, midpoint, ids)


def no(triple: Triple) -> str:
    return str(triple[0]["orderNo"])


async def test_filter_by_status(client: httpx.AsyncClient, dataset: Dataset) -> None:
    d = dataset
    assert await record_orders(client) == set(d.ids)
    assert await record_orders(client, status="DECLARED") == {no(d.matched)}
    assert await record_orders(client, status="MISMATCHED") == {no(d.mismatched)}
    assert await record_orders(client, status="AWAITING_DOCUMENTS") == {
        no(d.order_only),
        no(d.other_seller),
        no(d.other_platform),
    }
    assert await record_orders(client, status="CANCELLED") == set()
    [matched] = await records(client, status="DECLARED")
    assert matched["missing"] == []
    assert matched["discrepancies"] == []
    assert matched["matchedAt"] is not None
    [mismatched] = await records(client, status="MISMATCHED")
    assert "PAYMENT_AMOUNT_MISMATCH" in {x["code"] for x in mismatched["discrepancies"]}
    assert mismatched["matchedAt"] is None
    awaiting = {r["orderNo"]: r["missing"] for r in await records(client, status="AWAITING_DOCUMENTS")}
    assert awaiting == {
        no(d.order_only): ["waybill"],
        no(d.other_seller): ["waybill"],
        no(d.other_platform): ["payment", "waybill"],
    }
    for bad in ("matched", "BOGUS", ""):
        response = await client.get("/api/v1/records", params={"status": bad}, headers=ADMIN)
        body = assert_problem(response, 422, "VALIDATION_FAILED")
        assert any(e["path"].endswith("status") for e in body["errors"])


async def test_filter_by_parties_and_document_keys(client: httpx.AsyncClient, dataset: Dataset) -> None:
    d = dataset
    assert await record_orders(client, ebpCode=PLATFORM2) == {no(d.other_platform)}
    assert await record_orders(client, ebpCode=PLATFORM) == set(d.ids) - {no(d.other_platform)}
    assert await record_orders(client, ebpCode="3120960Z99") == set()
    assert await record_orders(client, ebcCode=SELLER2) == {no(d.other_seller)}
    assert await record_orders(client, ebcCode=SELLER) == set(d.ids) - {no(d.other_seller)}
    for triple in (d.matched, d.mismatched, d.order_only, d.other_seller, d.other_platform):
        assert await record_orders(client, orderNo=no(triple)) == {no(triple)}
    assert await record_orders(client, orderNo=no(d.matched)[:-1]) == set()  # exact, not a prefix

    # payTransactionId finds the record through its linked payment, not through the order's reference.
    assert await record_orders(client, payTransactionId=d.matched[1]["payTransactionId"]) == {no(d.matched)}
    assert await record_orders(client, payTransactionId=d.order_only[1]["payTransactionId"]) == {no(d.order_only)}
    assert await record_orders(client, payTransactionId=d.other_platform[0]["payTransactionId"]) == set()
    assert await record_orders(client, logisticsNo=d.mismatched[2]["logisticsNo"]) == {no(d.mismatched)}
    assert await record_orders(client, logisticsNo=d.order_only[2]["logisticsNo"]) == set()

    buyer = d.order_only[0]["buyerIdNumber"]
    assert await record_orders(client, buyerIdNumber=buyer) == {no(d.order_only)}
    assert await record_orders(client, buyerIdNumber=examples.ORDER["buyerIdNumber"]) == set(d.ids) - {no(d.order_only)}
    [row] = await records(client, buyerIdNumber=buyer)
    assert row["buyerIdNumber"] == buyer
    assert row["ebcCode"] == SELLER
    assert row["ebpCode"] == PLATFORM
    assert row["id"] == d.ids[no(d.order_only)]


async def test_combined_filters(client: httpx.AsyncClient, dataset: Dataset) -> None:
    d = dataset
    assert await record_orders(client, status="AWAITING_DOCUMENTS", ebpCode=PLATFORM) == {
        no(d.order_only),
        no(d.other_seller),
    }
    assert await record_orders(client, status="AWAITING_DOCUMENTS", ebpCode=PLATFORM, ebcCode=SELLER) == {
        no(d.order_only)
    }
    assert await record_orders(
        client, status="AWAITING_DOCUMENTS", buyerIdNumber=examples.ORDER["buyerIdNumber"], ebpCode=PLATFORM
    ) == {no(d.other_seller)}
    assert await record_orders(client, status="DECLARED", orderNo=no(d.mismatched)) == set()
    assert await record_orders(
        client, payTransactionId=d.matched[1]["payTransactionId"], logisticsNo=d.matched[2]["logisticsNo"]
    ) == {no(d.matched)}
    assert (
        await record_orders(
            client, payTransactionId=d.matched[1]["payTransactionId"], logisticsNo=d.mismatched[2]["logisticsNo"]
        )
        == set()
    )
    assert await record_orders(client, status="AWAITING_DOCUMENTS", createdFrom=iso(d.midpoint), ebpCode=PLATFORM) == {
        no(d.other_seller)
    }
    # Filters combine with the caller's tenancy: platform 2 sees only its own record, whatever it asks.
    platform2 = {r["orderNo"] for r in await records(client, headers=d.platform2)}
    assert platform2 == {no(d.other_platform)}
    assert await records(client, headers=d.platform2, ebpCode=PLATFORM) == []
    # The seller of record 4 is not filed with a key here; seller 1 sees every record it sells in.
    seller = {r["orderNo"] for r in await records(client, headers=d.parties.seller, status="AWAITING_DOCUMENTS")}
    assert seller == {no(d.order_only), no(d.other_platform)}


async def test_filter_by_time(client: httpx.AsyncClient, dataset: Dataset) -> None:
    d = dataset
    before = {no(d.matched), no(d.mismatched), no(d.order_only)}
    after = {no(d.other_seller), no(d.other_platform)}
    assert await record_orders(client, createdFrom=iso(d.midpoint)) == after
    assert await record_orders(client, createdTo=iso(d.midpoint)) == before
    # The record of `order_only` was created before the midpoint but changed after it (its payment).
    assert await record_orders(client, updatedSince=iso(d.midpoint)) == after | {no(d.order_only)}
    # Other zones mean the same instant.
    shanghai = d.midpoint.astimezone(timezone(timedelta(hours=8))).isoformat()
    assert shanghai.endswith("+08:00")
    assert await record_orders(client, createdFrom=shanghai) == after
    plus8 = (d.midpoint + timedelta(hours=8)).replace(tzinfo=None).isoformat() + "+08:00"
    assert await record_orders(client, createdFrom=plus8) == after
    assert await record_orders(client, createdFrom=iso(d.midpoint + timedelta(days=1))) == set()
    assert await record_orders(client, createdTo=iso(d.midpoint - timedelta(days=1))) == set()
    assert await record_orders(client, updatedSince=iso(d.midpoint + timedelta(days=1))) == set()
    assert await record_orders(client, createdFrom=iso(d.midpoint), createdTo=iso(d.midpoint)) == set()

    # Boundaries: createdFrom includes the instant, createdTo excludes it; updatedSince includes it.
    rows = await records(client)
    for row in rows:
        created, updated = parse_time(row["createdAt"]), parse_time(row["updatedAt"])
        assert updated >= created
        assert row["orderNo"] in await record_orders(client, createdFrom=row["createdAt"])
        assert row["orderNo"] not in await record_orders(client, createdTo=row["createdAt"])
        assert row["orderNo"] in await record_orders(client, createdTo=iso(created + timedelta(microseconds=1)))
        assert row["orderNo"] in await record_orders(client, updatedSince=row["updatedAt"])
        later = iso(updated + timedelta(microseconds=1))
        assert row["orderNo"] not in await record_orders(client, updatedSince=later)


@pytest.mark.parametrize("name", ["createdFrom", "createdTo", "updatedSince"])
@pytest.mark.parametrize("value", ["2026-11-23T08:00:00", "2026-11-23 08:00:00", "2026-11-23"])
async def test_naive_times_are_422(client: httpx.AsyncClient, name: str, value: str) -> None:
    response = await client.get("/api/v1/records", params={name: value}, headers=ADMIN)
    body = assert_problem(response, 422, "VALIDATION_FAILED")
    assert [e["path"] for e in body["errors"]] == [name]


@pytest.mark.parametrize("name", ["createdFrom", "createdTo", "updatedSince"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "1e400"])
async def test_unreadable_times_are_422(client: httpx.AsyncClient, name: str, value: str) -> None:
    response = await client.get("/api/v1/records", params={name: value}, headers=ADMIN)
    body = assert_problem(response, 422, "VALIDATION_FAILED")
    assert any(e["path"].endswith(name) for e in body["errors"])


# --- pagination -------------------------------------------------------------------------------


async def _walk(client: httpx.AsyncClient, headers: dict[str, str], limit: int, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get("/api/v1/records", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([r["id"] for r in page["items"]])
        cursor = page["nextCursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


async def test_cursor_pagination_visits_every_record_once(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    created = []
    for _ in range(7):
        order, _, _ = purchase()
        response = await client.post("/api/v1/orders", json=order, headers=parties.platform)
        assert response.status_code == 201
        created.append(response.json()["recordId"])

    pages = await _walk(client, ADMIN, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [i for p in pages for i in p]
    assert sorted(flat) == sorted(created)
    assert len(set(flat)) == 7
    # Oldest change first: the order of creation, since none has changed since.
    assert flat == created
    # Stable: the same walk again gives the same pages; the enterprise's own view is the same.
    assert await _walk(client, ADMIN, 3) == pages
    assert await _walk(client, parties.platform, 3) == pages
    # Pages that end exactly on the last record have no next cursor.
    assert [len(p) for p in await _walk(client, ADMIN, 7)] == [7]
    assert [len(p) for p in await _walk(client, ADMIN, 1)] == [1] * 7
    assert await _walk(client, ADMIN, 500) == [created]

    # A record that changes moves to the end: a poller following the cursor sees it again, never misses it.
    first = await client.get("/api/v1/records", params={"limit": 3}, headers=ADMIN)
    cursor = first.json()["nextCursor"]
    _, payment, _ = purchase(
        order_no=(await client.get(f"/api/v1/records/{created[0]}", headers=ADMIN)).json()["orderNo"]
    )
    assert (await client.post("/api/v1/payments", json=payment, headers=parties.payment)).status_code == 201
    rest = await client.get("/api/v1/records", params={"limit": 10, "cursor": cursor}, headers=ADMIN)
    assert [r["id"] for r in rest.json()["items"]] == [*created[3:], created[0]]
    assert rest.json()["nextCursor"] is None


async def test_cursor_pagination_with_filters(client: httpx.AsyncClient, dataset: Dataset) -> None:
    pages = await _walk(client, ADMIN, 2, status="AWAITING_DOCUMENTS")
    assert [len(p) for p in pages] == [2, 1]
    flat = {i for p in pages for i in p}
    d = dataset
    assert flat == {d.ids[no(d.order_only)], d.ids[no(d.other_seller)], d.ids[no(d.other_platform)]}
    pages = await _walk(client, d.parties.payment, 1)
    assert {i for p in pages for i in p} == {
        d.ids[no(t)] for t in (d.matched, d.mismatched, d.order_only, d.other_seller)
    }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!!",
        "A",
        _b64(b"\xff\xfe\x00"),
        _b64(b"{}"),
        _b64(b"[]"),
        _b64(b"null"),
        _b64(b"42"),
        _b64(b'"text"'),
        _b64(b"[1, 2]"),
        _b64(b'["2026-11-23T08:00:00", "0b9f5c52-2b1f-4b8e-9f57-0f1f9d0e8a11"]'),  # naive time
        _b64(b'["2026-11-23T08:00:00+00:00", "not-a-uuid"]'),
        _b64(b'["2026-11-23T08:00:00+00:00", 5]'),
        _b64(b'["2026-11-23T08:00:00+00:00", null]'),
        _b64(b'["2026-11-23T08:00:00+00:00", ["x"]]'),
        _b64(b'["2026-11-23T08:00:00+00:00", "0b9f5c52-2b1f-4b8e-9f57-0f1f9d0e8a11", 3]'),
        _b64(b'{"a": 1, "b": 2}'),
    ],
)
async def test_invalid_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/api/v1/records", params={"cursor": cursor}, headers=ADMIN)
    assert_problem(response, 422, "INVALID_CURSOR")


async def test_a_cursor_with_another_zone_still_works(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, _, _ = purchase()
    created = (await client.post("/api/v1/orders", json=order, headers=parties.platform)).json()["recordId"]
    earlier = datetime(2000, 1, 1, 8, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    cursor = _b64(json.dumps([earlier.isoformat(), str(uuid.uuid4())]).encode())
    response = await client.get("/api/v1/records", params={"cursor": cursor}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == [created]


@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5", ""])
async def test_limit_out_of_range_is_422(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/api/v1/records", params={"limit": limit}, headers=ADMIN)
    body = assert_problem(response, 422, "VALIDATION_FAILED")
    assert any(e["path"].endswith("limit") for e in body["errors"])


# --- one record -------------------------------------------------------------------------------


async def test_record_detail_has_documents_discrepancies_and_timeline(
    client: httpx.AsyncClient, dataset: Dataset
) -> None:
    d = dataset
    for triple, status in ((d.matched, "DECLARED"), (d.mismatched, "MISMATCHED")):
        record_id = d.ids[no(triple)]
        response = await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        detail = response.json()
        assert detail["id"] == record_id
        assert detail["status"] == status
        assert detail["ebpCode"] == PLATFORM
        assert detail["ebcCode"] == SELLER
        assert detail["orderNo"] == no(triple)
        assert detail["missing"] == []
        for field in ("createdAt", "updatedAt"):
            parse_time(detail[field])

        documents = {doc["documentType"]: doc for doc in detail["documents"]}
        assert set(documents) == {"order", "payment", "waybill"}
        order, payment, waybill = triple
        assert documents["order"]["key"] == {"ebpCode": PLATFORM, "orderNo": order["orderNo"]}
        assert documents["payment"]["key"] == {"payCode": PAYMENT_FIRM, "payTransactionId": payment["payTransactionId"]}
        assert documents["waybill"]["key"] == {"logisticsCode": CARRIER, "logisticsNo": waybill["logisticsNo"]}
        senders = {"order": PLATFORM, "payment": PAYMENT_FIRM, "waybill": CARRIER}
        for doc_type, posted in zip(("order", "payment", "waybill"), triple, strict=True):
            doc = documents[doc_type]
            assert doc["version"] == 1
            assert doc["state"] == "active"
            assert doc["recordId"] == record_id
            assert doc["senderCode"] == senders[doc_type]
            parse_time(doc["createdAt"])
            for field, value in posted.items():
                assert doc["document"][field] == value, (doc_type, field)

        if status == "DECLARED":
            assert detail["discrepancies"] == []
            assert detail["matchedAt"] is not None
        else:
            [discrepancy] = [x for x in detail["discrepancies"] if x["code"] == "PAYMENT_AMOUNT_MISMATCH"]
            assert discrepancy["severity"] == "error"
            assert discrepancy["expected"] == "246.12"
            assert discrepancy["actual"] == "240.00"

        timeline = detail["timeline"]
        kinds = [e["kind"] for e in timeline]
        # The first document is received, which creates the record, to which it is then linked.
        assert kinds[:3] == ["document_received", "record_created", "document_linked"]
        assert kinds.count("document_received") == 3
        assert kinds.count("document_linked") == 3
        # The matcher writes each document's business receipt last.
        assert kinds.count("document_receipt") == 3
        changes = [e for e in timeline if e["kind"] == "status_changed"]
        assert [k for k in kinds if k != "document_receipt"][-1] == "status_changed"
        # A matched record is declared in the same transaction: AWAITING → MATCHED → DECLARED.
        before = "MATCHED" if status == "DECLARED" else "AWAITING_DOCUMENTS"
        assert (changes[-1]["detail"]["from"], changes[-1]["detail"]["to"]) == (before, status)
        # Documents act as their senders; the match stage issues receipts and declares.
        assert changes[-1]["actor"] == ("system:matcher" if status == "DECLARED" else f"enterprise:{CARRIER}")
        assert {e["actor"] for e in timeline if e["kind"] == "document_receipt"} == {"system:matcher"}
        times = [parse_time(e["at"]) for e in timeline]
        assert times == sorted(times)
        actors = {e["actor"] for e in timeline}
        assert actors == {
            f"enterprise:{PLATFORM}",
            f"enterprise:{PAYMENT_FIRM}",
            f"enterprise:{CARRIER}",
            "system:matcher",
        }
        received = [e for e in timeline if e["kind"] == "document_received"]
        assert [e["detail"]["documentType"] for e in received] == ["order", "payment", "waybill"]
        assert [e["actor"] for e in received] == [f"enterprise:{c}" for c in (PLATFORM, PAYMENT_FIRM, CARRIER)]
        linked = [e for e in timeline if e["kind"] == "document_linked"]
        assert [e["detail"]["documentType"] for e in linked] == ["order", "payment", "waybill"]

    # An awaiting record: one order, no status change yet.
    detail = (await client.get(f"/api/v1/records/{d.ids[no(d.other_platform)]}", headers=ADMIN)).json()
    assert [e["kind"] for e in detail["timeline"]] == [
        "document_received",
        "record_created",
        "document_linked",
        "document_receipt",
    ]
    assert {e["actor"] for e in detail["timeline"]} == {f"enterprise:{PLATFORM2}", "system:matcher"}
    assert detail["missing"] == ["payment", "waybill"]
    assert [doc["documentType"] for doc in detail["documents"]] == ["order"]


async def test_unknown_or_malformed_record_id(client: httpx.AsyncClient, dataset: Dataset) -> None:
    unknown = uuid.uuid4()
    body = assert_problem(await client.get(f"/api/v1/records/{unknown}", headers=ADMIN), 404, "RECORD_NOT_FOUND")
    assert str(unknown) in body["detail"]
    for bad in ("not-a-uuid", "123", f"{unknown}x", "%20"):
        response = await client.get(f"/api/v1/records/{bad}", headers=ADMIN)
        body = assert_problem(response, 422, "VALIDATION_FAILED")
        assert any("record_id" in e["path"] for e in body["errors"]), body


# --- documents by natural key -----------------------------------------------------------------


async def test_documents_by_natural_key_return_the_fields_as_posted(
    client: httpx.AsyncClient, dataset: Dataset
) -> None:
    d = dataset
    order, payment, waybill = d.mismatched
    record_id = d.ids[no(d.mismatched)]
    lookups = (
        (f"/api/v1/orders/{PLATFORM}/{order['orderNo']}", order, "order", PLATFORM),
        (f"/api/v1/payments/{PAYMENT_FIRM}/{payment['payTransactionId']}", payment, "payment", PAYMENT_FIRM),
        (f"/api/v1/waybills/{CARRIER}/{waybill['logisticsNo']}", waybill, "waybill", CARRIER),
    )
    for path, posted, doc_type, sender in lookups:
        response = await client.get(path, headers=ADMIN)
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["documentType"] == doc_type
        assert doc["recordId"] == record_id
        assert doc["senderCode"] == sender
        assert doc["version"] == 1
        assert doc["state"] == "active"
        uuid.UUID(doc["rawMessageId"])
        stored = doc["document"]
        for field, value in posted.items():
            assert stored[field] == value, (doc_type, field)
        # Defaults filled in for the omitted transport fields.
        assert stored["appType"] == "1"
        assert stored["appStatus"] == "2"
        assert len(stored["appTime"]) == 14
        uuid.UUID(stored["guid"])
        assert set(stored) - set(posted) <= {"guid", "appType", "appStatus", "appTime"}
    assert_problem(
        await client.get(f"/api/v1/orders/{PLATFORM2}/{order['orderNo']}", headers=ADMIN), 404, "DOCUMENT_NOT_FOUND"
    )


async def test_decimals_come_back_as_strings_exactly(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, payment, _ = purchase()
    lines = order["orderList"]
    lines[0] |= {"qty": "2.50000", "price": "80.04", "totalPrice": "200.10000"}
    order |= {
        "goodsValue": "200.10",
        "freight": "10.00000",
        "discount": "0.00",
        "taxTotal": "0.02",
        "acturalPaid": "210.12",
    }
    # JSON numbers too: read as exact decimals, never through float.
    raw = json.dumps(order).replace('"200.10"', "200.10").replace('"0.02"', "0.02")
    assert "200.10," in raw
    response = await client.post(
        "/api/v1/orders", content=raw.encode(), headers={**parties.platform, "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    # Amounts agree to the cent; taxTotal 0.02 is not the tax of these goods, which is only a warning.
    assert [d["code"] for d in response.json()["discrepancies"]] == ["TAX_TOTAL_MISMATCH"]
    payment |= {"amountPaid": "210.120"}
    paid_receipt = await client.post("/api/v1/payments", json=payment, headers=parties.payment)
    assert paid_receipt.status_code == 201
    # 210.120 is 210.12: no PAYMENT_AMOUNT_MISMATCH (the tax warning on the order stays).
    assert [d["code"] for d in paid_receipt.json()["discrepancies"]] == ["TAX_TOTAL_MISMATCH"]
    assert paid_receipt.json()["missing"] == ["waybill"]

    stored = (await client.get(f"/api/v1/orders/{PLATFORM}/{order['orderNo']}", headers=ADMIN)).json()["document"]
    assert stored["goodsValue"] == "200.10"
    assert stored["taxTotal"] == "0.02"
    assert stored["freight"] == "10.00000"
    assert stored["discount"] == "0.00"
    assert stored["acturalPaid"] == "210.12"
    assert stored["orderList"][0]["qty"] == "2.50000"
    assert stored["orderList"][0]["totalPrice"] == "200.10000"
    assert stored["orderList"][0]["gnum"] == 1
    paid = (await client.get(f"/api/v1/payments/{PAYMENT_FIRM}/{payment['payTransactionId']}", headers=ADMIN)).json()
    assert paid["document"]["amountPaid"] == "210.120"


# --- a waybill that arrives first --------------------------------------------------------------


async def test_waybill_before_its_order_links_when_the_order_arrives(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, payment, waybill = purchase()
    early = await client.post("/api/v1/waybills", json=waybill, headers=parties.logistics)
    assert early.status_code == 201, early.text
    receipt = early.json()
    assert receipt["recordId"] is None
    assert receipt["recordStatus"] is None
    assert receipt["missing"] == []
    assert receipt["key"] == {"logisticsCode": CARRIER, "logisticsNo": waybill["logisticsNo"]}
    waiting = await client.get(f"/api/v1/waybills/{CARRIER}/{waybill['logisticsNo']}", headers=parties.logistics)
    assert waiting.json()["recordId"] is None
    assert await records(client) == []
    assert await records(client, logisticsNo=waybill["logisticsNo"]) == []

    arrived = await client.post("/api/v1/orders", json=order, headers=parties.platform)
    assert arrived.status_code == 201
    record_id = arrived.json()["recordId"]
    assert record_id is not None
    assert arrived.json()["recordStatus"] == "AWAITING_DOCUMENTS"
    assert arrived.json()["missing"] == ["payment"]

    linked = await client.get(f"/api/v1/waybills/{CARRIER}/{waybill['logisticsNo']}", headers=parties.logistics)
    assert linked.json()["recordId"] == record_id
    assert linked.json()["version"] == 1
    [row] = await records(client, logisticsNo=waybill["logisticsNo"])
    assert row["id"] == record_id
    detail = (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
    assert {doc["documentType"] for doc in detail["documents"]} == {"order", "waybill"}
    waybill_events = [
        e for e in detail["timeline"] if e["kind"] == "document_linked" and e["detail"]["documentType"] == "waybill"
    ]
    assert len(waybill_events) == 1
    assert waybill_events[0]["actor"] == f"enterprise:{PLATFORM}"  # linked by the order's arrival
    assert "document_received" in [e["kind"] for e in detail["timeline"]]
    # The carrier is now party to the record.
    assert [r["id"] for r in await records(client, headers=parties.logistics)] == [record_id]

    final = await client.post("/api/v1/payments", json=payment, headers=parties.payment)
    assert final.json()["recordStatus"] == "DECLARED"
    assert final.json()["recordId"] == record_id
