"""三单对碰 end to end through HTTP: arrival order, intermediate states, discrepancies, waybill linking,
multiple payments, payments that move between orders, and the timeline."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import httpx
import pytest

from app.schemas import examples
from tests.conftest import ADMIN
from tests.factories import Parties, file_enterprise, file_parties, post_triple, purchase

SECOND_PLATFORM = {"code": "3120960A03", "name": "海淘汇跨境电商平台", "roles": ["platform"]}
DOC_TYPES = ("order", "payment", "waybill")
PATHS = {"order": "/api/v1/orders", "payment": "/api/v1/payments", "waybill": "/api/v1/waybills"}

Triple = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


# --- helpers -------------------------------------------------------------------------------------


def _sender(parties: Parties, doc_type: str) -> dict[str, str]:
    return {"order": parties.platform, "payment": parties.payment, "waybill": parties.logistics}[doc_type]


async def _post(client: httpx.AsyncClient, doc_type: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = await client.post(PATHS[doc_type], json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _records(client: httpx.AsyncClient, order_no: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/records", params={"orderNo": order_no}, headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["nextCursor"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


async def _only_record(client: httpx.AsyncClient, order_no: str) -> dict[str, Any]:
    items = await _records(client, order_no)
    assert len(items) == 1, items
    return items[0]


async def _record_of(client: httpx.AsyncClient, order_no: str, ebp_code: str) -> dict[str, Any]:
    matching = [r for r in await _records(client, order_no) if r["ebpCode"] == ebp_code]
    assert len(matching) == 1, matching
    return matching[0]


async def _detail(client: httpx.AsyncClient, record_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def _codes(discrepancies: list[dict[str, Any]]) -> list[str]:
    return [d["code"] for d in discrepancies]


async def _second_platform(client: httpx.AsyncClient) -> dict[str, str]:
    return await file_enterprise(
        client, SECOND_PLATFORM["code"], SECOND_PLATFORM["name"], list(SECOND_PLATFORM["roles"])
    )


def _other_platform_triple(order_no: str) -> Triple:
    """A purchase of the second platform that shares ``order_no`` with one of the first platform."""
    order, payment, waybill = purchase(order_no)
    order |= {"ebpCode": SECOND_PLATFORM["code"], "ebpName": SECOND_PLATFORM["name"], "payTransactionId": "PAYA03"}
    payment |= {"ebpCode": SECOND_PLATFORM["code"], "ebpName": SECOND_PLATFORM["name"], "payTransactionId": "PAYA03"}
    waybill |= {"logisticsNo": f"WBA03{order_no}"}
    return order, payment, waybill


# --- arrival order -------------------------------------------------------------------------------


@pytest.mark.parametrize("arrival", list(itertools.permutations(DOC_TYPES)), ids="-".join)
async def test_every_arrival_order_gives_one_matched_record(
    client: httpx.AsyncClient, arrival: tuple[str, str, str]
) -> None:
    parties = await file_parties(client)
    documents = dict(zip(DOC_TYPES, purchase(), strict=True))
    order_no = documents["order"]["orderNo"]

    arrived: list[str] = []
    receipts = []
    for doc_type in arrival:
        receipt = await _post(client, doc_type, documents[doc_type], _sender(parties, doc_type))
        arrived.append(doc_type)
        receipts.append(receipt)
        if arrived == ["waybill"]:
            # No record has this order number yet: the waybill waits.
            assert receipt["recordId"] is None, receipt
            assert receipt["recordStatus"] is None
            continue
        expected_missing = [t for t in DOC_TYPES if t not in arrived]
        assert receipt["missing"] == expected_missing, receipt
        assert receipt["recordStatus"] == ("DECLARED" if not expected_missing else "AWAITING_DOCUMENTS"), receipt
        assert receipt["discrepancies"] == []

    record = await _only_record(client, order_no)
    assert record["status"] == "DECLARED"
    assert record["missing"] == []
    assert record["discrepancies"] == []
    assert record["matchedAt"] is not None
    assert receipts[-1]["recordId"] == record["id"]
    detail = await _detail(client, record["id"])
    assert sorted(d["documentType"] for d in detail["documents"]) == sorted(DOC_TYPES)
    assert all(d["recordId"] == record["id"] for d in detail["documents"])


async def test_matched_record_timeline_has_status_change_to_matched(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase()
    await post_triple(client, parties, triple)
    detail = await _detail(client, (await _only_record(client, triple[0]["orderNo"]))["id"])
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.count("document_received") == 3, kinds
    assert "record_created" in kinds
    changes = [e["detail"] for e in detail["timeline"] if e["kind"] == "status_changed"]
    assert changes[-2:] == [
        {"from": "AWAITING_DOCUMENTS", "to": "MATCHED", "event": "documents_agree"},
        {"from": "MATCHED", "to": "DECLARED", "event": "declaration_accepted"},
    ], changes
    assert all(e["actor"] for e in detail["timeline"])


# --- discrepancies -------------------------------------------------------------------------------


async def test_discrepancy_found_early_is_listed_while_awaiting(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, payment, waybill = purchase(payment={"amountPaid": "200.00"})
    await _post(client, "order", order, parties.platform)
    receipt = await _post(client, "payment", payment, parties.payment)
    assert receipt["recordStatus"] == "AWAITING_DOCUMENTS"
    assert receipt["missing"] == ["waybill"]
    assert _codes(receipt["discrepancies"]) == ["PAYMENT_AMOUNT_MISMATCH"]

    record = await _only_record(client, order["orderNo"])
    assert record["status"] == "AWAITING_DOCUMENTS"
    assert record["missing"] == ["waybill"]
    [issue] = record["discrepancies"]
    assert issue["code"] == "PAYMENT_AMOUNT_MISMATCH"
    assert (issue["expected"], issue["actual"]) == ("246.12", "200.00")

    # The last document arrives: the record is decided, and the discrepancy blocks the match.
    receipt = await _post(client, "waybill", waybill, parties.logistics)
    assert receipt["recordStatus"] == "MISMATCHED"
    assert receipt["missing"] == []
    assert _codes(receipt["discrepancies"]) == ["PAYMENT_AMOUNT_MISMATCH"]


async def test_mismatched_triple_names_each_code_documents_and_field(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase(payment={"payerName": "李四", "payerIdNumber": "330106198805054329", "amountPaid": "240.00"})
    order, payment, _waybill = triple
    responses = await post_triple(client, parties, triple)
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert responses[-1].json()["recordStatus"] == "MISMATCHED"

    record = await _only_record(client, order["orderNo"])
    assert record["status"] == "MISMATCHED"
    assert record["missing"] == []
    pair = [
        {"type": "order", "key": f"{order['ebpCode']}/{order['orderNo']}"},
        {"type": "payment", "key": f"{payment['payCode']}/{payment['payTransactionId']}"},
    ]
    found = {(d["code"], d["field"]): d for d in record["discrepancies"]}
    assert set(found) == {
        ("PAYMENT_AMOUNT_MISMATCH", "payment.amountPaid"),
        ("PAYER_NOT_BUYER", "payment.payerIdNumber"),
        ("PAYER_NOT_BUYER", "payment.payerName"),
    }, found
    for issue in found.values():
        assert issue["documents"] == pair
        assert issue["severity"] == "error"
        assert issue["message"]["zh"]
        assert issue["message"]["en"]
    assert found[("PAYMENT_AMOUNT_MISMATCH", "payment.amountPaid")]["actual"] == "240.00"
    assert found[("PAYER_NOT_BUYER", "payment.payerName")]["expected"] == order["buyerName"]
    assert found[("PAYER_NOT_BUYER", "payment.payerName")]["actual"] == "李四"

    detail = await _detail(client, record["id"])
    assert detail["discrepancies"] == record["discrepancies"]
    assert {"from": "AWAITING_DOCUMENTS", "to": "MISMATCHED", "event": "documents_disagree"} in [
        e["detail"] for e in detail["timeline"] if e["kind"] == "status_changed"
    ]


# --- waybill linking -----------------------------------------------------------------------------


@pytest.mark.parametrize("creator", ["order", "payment"])
async def test_waiting_waybill_links_when_its_record_appears(client: httpx.AsyncClient, creator: str) -> None:
    parties = await file_parties(client)
    documents = dict(zip(DOC_TYPES, purchase(), strict=True))
    order_no = documents["order"]["orderNo"]

    waiting = await _post(client, "waybill", documents["waybill"], parties.logistics)
    assert waiting["recordId"] is None
    assert waiting["missing"] == []
    assert await _records(client, order_no) == []
    stored = await client.get(
        f"/api/v1/waybills/{documents['waybill']['logisticsCode']}/{documents['waybill']['logisticsNo']}",
        headers=ADMIN,
    )
    assert stored.status_code == 200
    assert stored.json()["recordId"] is None

    receipt = await _post(client, creator, documents[creator], _sender(parties, creator))
    other = "payment" if creator == "order" else "order"
    assert receipt["missing"] == [other], receipt
    record = await _only_record(client, order_no)
    detail = await _detail(client, record["id"])
    assert sorted(d["documentType"] for d in detail["documents"]) == sorted([creator, "waybill"])
    stored = await client.get(
        f"/api/v1/waybills/{documents['waybill']['logisticsCode']}/{documents['waybill']['logisticsNo']}",
        headers=ADMIN,
    )
    assert stored.json()["recordId"] == record["id"]

    receipt = await _post(client, other, documents[other], _sender(parties, other))
    assert receipt["recordStatus"] == "DECLARED"
    assert (await _only_record(client, order_no))["status"] == "DECLARED"


async def test_waybill_for_two_platforms_waits_until_it_names_its_platform(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    platform2 = await _second_platform(client)
    order, payment, waybill = purchase()
    order_no = order["orderNo"]
    order2, _payment2, _waybill2 = _other_platform_triple(order_no)
    await _post(client, "order", order, parties.platform)
    await _post(client, "payment", payment, parties.payment)
    await _post(client, "order", order2, platform2)

    receipt = await _post(client, "waybill", waybill, parties.logistics)
    assert receipt["recordId"] is None, receipt
    records = await _records(client, order_no)
    assert len(records) == 2
    for record in records:
        assert record["status"] == "AWAITING_DOCUMENTS"
        assert "waybill" in record["missing"]
        assert "WAYBILL_AMBIGUOUS" in _codes(record["discrepancies"]), record
        [issue] = [d for d in record["discrepancies"] if d["code"] == "WAYBILL_AMBIGUOUS"]
        assert issue["documents"] == [
            {"type": "waybill", "key": f"{waybill['logisticsCode']}/{waybill['logisticsNo']}"}
        ]
        assert issue["field"] == "waybill.ebpCode"

    # The carrier names the platform (the JSON extension ebpCode) in a change: the waybill links.
    changed = await _post(client, "waybill", waybill | {"appType": "2", "ebpCode": order["ebpCode"]}, parties.logistics)
    first = await _record_of(client, order_no, order["ebpCode"])
    assert changed["recordId"] == first["id"]
    assert changed["version"] == 2
    assert first["status"] == "DECLARED", first
    assert first["discrepancies"] == []
    second = await _record_of(client, order_no, SECOND_PLATFORM["code"])
    assert second["status"] == "AWAITING_DOCUMENTS"
    assert second["missing"] == ["payment", "waybill"]
    # The waybill no longer waits, so the other platform's record is no longer flagged.
    assert second["discrepancies"] == [], second


async def test_waybill_with_platform_links_directly_among_two_platforms(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    platform2 = await _second_platform(client)
    order, _payment, _waybill = purchase()
    order2, payment2, waybill2 = _other_platform_triple(order["orderNo"])
    await _post(client, "order", order, parties.platform)
    await _post(client, "order", order2, platform2)
    await _post(client, "payment", payment2, parties.payment)
    receipt = await _post(client, "waybill", waybill2 | {"ebpCode": SECOND_PLATFORM["code"]}, parties.logistics)
    second = await _record_of(client, order["orderNo"], SECOND_PLATFORM["code"])
    assert receipt["recordId"] == second["id"]
    assert second["status"] == "DECLARED"
    first = await _record_of(client, order["orderNo"], order["ebpCode"])
    assert first["missing"] == ["payment", "waybill"]
    assert first["discrepancies"] == []


async def test_waybill_first_then_orders_of_two_platforms_is_ambiguous(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    platform2 = await _second_platform(client)
    order, payment, waybill = purchase()
    order_no = order["orderNo"]
    order2, payment2, _waybill2 = _other_platform_triple(order_no)

    assert (await _post(client, "waybill", waybill, parties.logistics))["recordId"] is None
    await _post(client, "order", order, parties.platform)
    # (Were the first purchase's payment to come now, it would match and be declared with this waybill.)
    await _post(client, "order", order2, platform2)
    await _post(client, "payment", payment, parties.payment)
    await _post(client, "payment", payment2, parties.payment)

    # Same documents as when the orders came first: whatever the arrival order, the waybill is ambiguous.
    records = await _records(client, order_no)
    assert len(records) == 2
    for record in records:
        assert record["status"] == "AWAITING_DOCUMENTS", record
        assert record["missing"] == ["waybill"]
        assert _codes(record["discrepancies"]) == ["WAYBILL_AMBIGUOUS"]
    stored = await client.get(f"/api/v1/waybills/{waybill['logisticsCode']}/{waybill['logisticsNo']}", headers=ADMIN)
    assert stored.json()["recordId"] is None

    changed = await _post(client, "waybill", waybill | {"appType": "2", "ebpCode": order["ebpCode"]}, parties.logistics)
    assert changed["recordStatus"] == "DECLARED"
    assert (await _record_of(client, order_no, SECOND_PLATFORM["code"]))["discrepancies"] == []


async def test_cancelling_a_waiting_ambiguous_waybill_clears_the_flag(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    platform2 = await _second_platform(client)
    order, _payment, waybill = purchase()
    order2, _payment2, _waybill2 = _other_platform_triple(order["orderNo"])
    await _post(client, "order", order, parties.platform)
    await _post(client, "order", order2, platform2)
    await _post(client, "waybill", waybill, parties.logistics)
    assert all("WAYBILL_AMBIGUOUS" in _codes(r["discrepancies"]) for r in await _records(client, order["orderNo"]))

    cancelled = await _post(client, "waybill", waybill | {"appType": "3"}, parties.logistics)
    assert cancelled["state"] == "cancelled"
    for record in await _records(client, order["orderNo"]):
        assert record["discrepancies"] == [], record


# --- payments ------------------------------------------------------------------------------------


async def test_two_payments_for_one_order_mismatch_until_one_is_cancelled(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase()
    order_no = triple[0]["orderNo"]
    await _post(client, "order", triple[0], parties.platform)
    await _post(client, "payment", triple[1], parties.payment)

    extra = copy.deepcopy(triple[1]) | {"payTransactionId": f"PAY2{order_no}"}
    receipt = await _post(client, "payment", extra, parties.payment)
    assert receipt["recordStatus"] == "AWAITING_DOCUMENTS"
    assert "MULTIPLE_PAYMENTS" in _codes(receipt["discrepancies"])
    receipt = await _post(client, "waybill", triple[2], parties.logistics)
    assert receipt["recordStatus"] == "MISMATCHED"
    record = await _only_record(client, order_no)
    assert record["status"] == "MISMATCHED"
    [multiple] = [d for d in record["discrepancies"] if d["code"] == "MULTIPLE_PAYMENTS"]
    assert sorted(d["key"] for d in multiple["documents"]) == sorted(
        [f"3120960P01/{triple[1]['payTransactionId']}", f"3120960P01/PAY2{order_no}"]
    )
    assert all(d["type"] == "payment" for d in multiple["documents"])
    assert (multiple["expected"], multiple["actual"]) == ("1", "2")
    detail = await _detail(client, record["id"])
    assert sum(d["documentType"] == "payment" for d in detail["documents"]) == 2

    cancelled = await _post(client, "payment", extra | {"appType": "3"}, parties.payment)
    assert cancelled["state"] == "cancelled"
    assert cancelled["recordStatus"] == "DECLARED"
    record = await _only_record(client, order_no)
    assert record["status"] == "DECLARED"
    assert record["discrepancies"] == []
    changes = [e["detail"] for e in (await _detail(client, record["id"]))["timeline"] if e["kind"] == "status_changed"]
    assert [c["to"] for c in changes] == ["MISMATCHED", "MATCHED", "DECLARED"]

    # Declared, the purchase takes no further payment (-401008).
    third = await client.post(
        "/api/v1/payments", json=extra | {"payTransactionId": f"PAY3{order_no}"}, headers=parties.payment
    )
    assert third.status_code == 409
    assert third.json()["cebReturnStatus"] == "-401008"


async def test_payment_moved_to_another_order_leaves_the_old_record(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    first = purchase()
    await _post(client, "order", first[0], parties.platform)  # not yet complete, so its payment may still move
    await _post(client, "payment", first[1], parties.payment)
    payment = first[1]
    # A second purchase whose order refers to this payment, with no payment of its own yet.
    order2, _payment2, waybill2 = purchase(order={"payTransactionId": payment["payTransactionId"]})
    await _post(client, "order", order2, parties.platform)
    await _post(client, "waybill", waybill2, parties.logistics)
    assert (await _only_record(client, order2["orderNo"]))["missing"] == ["payment"]

    moved = await _post(client, "payment", payment | {"appType": "2", "orderNo": order2["orderNo"]}, parties.payment)
    new_record = await _only_record(client, order2["orderNo"])
    assert moved["recordId"] == new_record["id"]
    assert moved["version"] == 2
    assert new_record["status"] == "DECLARED", new_record
    new_detail = await _detail(client, new_record["id"])
    assert sorted(d["documentType"] for d in new_detail["documents"]) == sorted(DOC_TYPES)

    old_record = await _only_record(client, first[0]["orderNo"])
    assert old_record["status"] == "AWAITING_DOCUMENTS"
    assert old_record["missing"] == ["payment", "waybill"]
    assert old_record["discrepancies"] == []
    old_detail = await _detail(client, old_record["id"])
    assert sorted(d["documentType"] for d in old_detail["documents"]) == ["order"]
    assert "document_unlinked" in [e["kind"] for e in old_detail["timeline"]]


async def test_second_platform_order_same_number_keeps_separate_records(client: httpx.AsyncClient) -> None:
    """Payments link by (ebpCode, orderNo): each platform's purchase matches on its own."""
    parties = await file_parties(client)
    platform2 = await _second_platform(client)
    order, payment, waybill = purchase()
    order2, payment2, waybill2 = _other_platform_triple(order["orderNo"])
    await _post(client, "order", order, parties.platform)
    await _post(client, "order", order2, platform2)
    await _post(client, "payment", payment, parties.payment)
    await _post(client, "payment", payment2, parties.payment)
    await _post(client, "waybill", waybill | {"ebpCode": examples.PLATFORM["code"]}, parties.logistics)
    await _post(client, "waybill", waybill2 | {"ebpCode": SECOND_PLATFORM["code"]}, parties.logistics)
    records = await _records(client, order["orderNo"])
    assert sorted(r["ebpCode"] for r in records) == [examples.PLATFORM["code"], SECOND_PLATFORM["code"]]
    assert [r["status"] for r in records] == ["DECLARED", "DECLARED"]
