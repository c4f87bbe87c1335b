"""Intake through HTTP on the real database: idempotent replay, 409 on a changed duplicate, appType 2 / 3,
drafts, stale changes, validation by field path, malformed bodies (never a 5xx), body limits, batches and
the filing checks. After every rejected request the stored documents and records are read back unchanged."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from tests.conftest import ADMIN, WAIT
from tests.factories import Parties, file_parties, post_triple, purchase

Doc = dict[str, Any]
DOC_TYPES = ("order", "payment", "waybill")
ROUTE = {"order": "orders", "payment": "payments", "waybill": "waybills"}
KEY_FIELDS = {
    "order": ("ebpCode", "orderNo"),
    "payment": ("payCode", "payTransactionId"),
    "waybill": ("logisticsCode", "logisticsNo"),
}
PROBLEM_JSON = "application/problem+json"
GUID_1 = "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"
GUID_2 = "0F6A7C1E-2B3D-4E5F-8A9B-0C1D2E3F4A5B"


# --- helpers -----------------------------------------------------------------------------------


def sender(parties: Parties, doc_type: str) -> dict[str, str]:
    return {"order": parties.platform, "payment": parties.payment, "waybill": parties.logistics}[doc_type]


def doc_of(triple: tuple[Doc, Doc, Doc], doc_type: str) -> Doc:
    return triple[DOC_TYPES.index(doc_type)]


def doc_path(doc_type: str, doc: Doc) -> str:
    owner, number = KEY_FIELDS[doc_type]
    return f"/api/v1/{ROUTE[doc_type]}/{doc[owner]}/{doc[number]}"


def triple_paths(triple: tuple[Doc, Doc, Doc]) -> list[str]:
    return [doc_path(t, d) for t, d in zip(DOC_TYPES, triple, strict=True)]


async def submit(
    client: httpx.AsyncClient, parties: Parties, doc_type: str, doc: Doc, **changes: Any
) -> httpx.Response:
    body = copy.deepcopy(doc) | changes
    return await client.post(f"/api/v1/{ROUTE[doc_type]}", json=body, headers=sender(parties, doc_type))


async def submit_raw(
    client: httpx.AsyncClient,
    parties: Parties,
    doc_type: str,
    body: bytes,
    content_type: str = "application/json",
    *,
    batch: bool = False,
) -> httpx.Response:
    suffix = "/batch" if batch else ""
    headers = sender(parties, doc_type) | {"Content-Type": content_type}
    return await client.post(f"/api/v1/{ROUTE[doc_type]}{suffix}", content=body, headers=headers)


async def submit_batch(client: httpx.AsyncClient, parties: Parties, doc_type: str, items: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/{ROUTE[doc_type]}/batch", json={"items": items}, headers=sender(parties, doc_type)
    )


def with_literal(doc: Doc, path: tuple[Any, ...], literal: str) -> bytes:
    """The document as JSON text with the value at ``path`` written as a raw JSON literal."""
    body = copy.deepcopy(doc)
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "@@LITERAL@@"
    return json.dumps(body, ensure_ascii=False).replace('"@@LITERAL@@"', literal).encode()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    return problem


def error_paths(problem: dict[str, Any]) -> set[str]:
    return {error["path"] for error in problem["errors"]}


async def read(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def record_of(client: httpx.AsyncClient, receipt: dict[str, Any]) -> dict[str, Any]:
    assert receipt["recordId"] is not None, receipt
    return await read(client, f"/api/v1/records/{receipt['recordId']}")


async def snapshot(client: httpx.AsyncClient, paths: list[str]) -> dict[str, Any]:
    """Everything a rejected request must leave alone: the named documents and every record in full."""
    documents = {}
    for path in paths:
        response = await client.get(path, headers=ADMIN)
        documents[path] = (response.status_code, response.json())
    page = await read(client, "/api/v1/records?limit=500")
    records = [await read(client, f"/api/v1/records/{item['id']}") for item in page["items"]]
    for record in records:
        # A refused submission adds its receipts (2, then 100) to the record's history: that is the record
        # of the refusal, not a change to anything accepted.
        record.pop("documentReceipts")
    return {"documents": documents, "records": records}


async def matched_triple(client: httpx.AsyncClient, parties: Parties, **changes: Any) -> tuple[Doc, Doc, Doc]:
    triple = purchase(**changes)
    responses = await post_triple(client, parties, triple)
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    assert responses[-1].json()["recordStatus"] == "DECLARED", responses[-1].text
    return triple


# --- idempotent replay ---------------------------------------------------------------------------


@pytest.mark.parametrize("doc_type", DOC_TYPES)
async def test_same_document_again_is_a_replay(client: httpx.AsyncClient, doc_type: str) -> None:
    parties = await file_parties(client)
    triple = purchase()
    doc = doc_of(triple, doc_type)
    doc |= {"guid": GUID_1, "appTime": "20261123101500"}
    responses = await post_triple(client, parties, triple)
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    first = responses[DOC_TYPES.index(doc_type)].json()
    assert first["version"] == 1
    assert first["replayed"] is False
    assert "Idempotent-Replayed" not in responses[DOC_TYPES.index(doc_type)].headers
    record_id = responses[-1].json()["recordId"]
    before = await snapshot(client, triple_paths(triple))

    again = await submit(client, parties, doc_type, doc)
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    receipt = again.json()
    assert receipt["replayed"] is True
    assert receipt["recordId"] == record_id
    assert receipt["version"] == 1
    assert receipt["guid"] == GUID_1
    assert receipt["recordStatus"] == "DECLARED"
    assert receipt["key"] == {k: doc[k] for k in KEY_FIELDS[doc_type]}

    # Same business content under a new guid and a later appTime (a resend by the sender's retry loop).
    resend = await submit(client, parties, doc_type, doc, guid=GUID_2, appTime="20261124090000")
    assert resend.status_code == 200, resend.text
    assert resend.headers["Idempotent-Replayed"] == "true"
    assert resend.json()["recordId"] == record_id
    assert resend.json()["version"] == 1
    assert resend.json()["guid"] == GUID_1

    # Defaults omitted altogether (guid and appTime generated) are still the same document.
    bare = {k: v for k, v in doc.items() if k not in ("guid", "appTime", "appType", "appStatus")}
    assert (await submit(client, parties, doc_type, bare)).headers.get("Idempotent-Replayed") == "true"

    assert await snapshot(client, triple_paths(triple)) == before
    stored = await read(client, doc_path(doc_type, doc))
    assert stored["version"] == 1
    assert stored["document"]["guid"] == GUID_1


async def test_number_spelling_does_not_change_the_content(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, _, _ = purchase()
    assert (await submit(client, parties, "order", order)).status_code == 201
    respelt = with_literal(order, ("goodsValue",), "200.00000")
    response = await submit_raw(client, parties, "order", respelt)
    assert response.status_code == 200, response.text
    assert response.headers["Idempotent-Replayed"] == "true"
    assert (await read(client, doc_path("order", order)))["document"]["goodsValue"] == "200.00"


# --- same key, different content -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc_type", "spec_code"), [("order", "-301010"), ("payment", "-401007"), ("waybill", "-504012")]
)
async def test_same_key_different_content_is_a_conflict(
    client: httpx.AsyncClient, doc_type: str, spec_code: str
) -> None:
    parties = await file_parties(client)
    triple = await matched_triple(client, parties)
    doc = doc_of(triple, doc_type)
    before = await snapshot(client, triple_paths(triple))

    response = await submit(client, parties, doc_type, doc, note="改了内容但仍用 appType 1")
    problem = assert_problem(response, 409, "DUPLICATE_DIFFERENT_CONTENT")
    assert problem["cebReturnStatus"] == spec_code
    assert "appType 2" in problem["detail"]
    assert await snapshot(client, triple_paths(triple)) == before
    assert "note" not in (await read(client, doc_path(doc_type, doc)))["document"]


# --- appType 2: change ----------------------------------------------------------------------------


async def test_change_reevaluates_the_record(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase(payment={"amountPaid": "240.00"})
    order, payment, waybill = triple
    responses = await post_triple(client, parties, triple)
    assert [r.status_code for r in responses] == [201, 201, 201]
    mismatched = responses[-1].json()
    assert mismatched["recordStatus"] == "MISMATCHED"
    [discrepancy] = mismatched["discrepancies"]
    assert (discrepancy["code"], discrepancy["field"], discrepancy["expected"], discrepancy["actual"]) == (
        "PAYMENT_AMOUNT_MISMATCH",
        "payment.amountPaid",
        "246.12",
        "240.00",
    )

    fixed = await submit(client, parties, "payment", payment, appType="2", amountPaid="246.12")
    assert fixed.status_code == 200, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers
    receipt = fixed.json()
    assert (receipt["version"], receipt["state"], receipt["replayed"]) == (2, "active", False)
    assert receipt["recordId"] == mismatched["recordId"]
    assert receipt["recordStatus"] == "DECLARED"
    assert receipt["discrepancies"] == []
    assert receipt["returnInfo"].startswith("变更申报成功")

    stored = await read(client, doc_path("payment", payment))
    assert stored["version"] == 2
    assert stored["document"]["amountPaid"] == "246.12"
    record = await record_of(client, receipt)
    assert record["status"] == "DECLARED"
    assert record["discrepancies"] == []
    kinds = [event["kind"] for event in record["timeline"]]
    assert "document_modified" in kinds
    changes = [e["detail"] for e in record["timeline"] if e["kind"] == "status_changed"]
    assert [(c["from"], c["to"]) for c in changes[-2:]] == [("MISMATCHED", "MATCHED"), ("MATCHED", "DECLARED")]

    # The same change again is a replay; once declared, the documents can no longer change (-301011).
    again = await submit(client, parties, "payment", payment, appType="2", amountPaid="246.12")
    assert (again.status_code, again.headers.get("Idempotent-Replayed"), again.json()["version"]) == (200, "true", 2)
    before = await snapshot(client, triple_paths((order, payment, waybill)))
    broken = await submit(client, parties, "order", order, appType="2", consignee="王大明")
    assert assert_problem(broken, 409, "RECORD_ALREADY_DECLARED")["cebReturnStatus"] == "-301011"
    cancelled = await submit(client, parties, "payment", payment, appType="3")
    assert assert_problem(cancelled, 409, "RECORD_ALREADY_DECLARED")["cebReturnStatus"] == "-401008"
    second = await submit(client, parties, "payment", payment, payTransactionId="PAY-SECOND", amountPaid="1")
    assert assert_problem(second, 409, "RECORD_ALREADY_DECLARED")["cebReturnStatus"] == "-401008"
    assert await snapshot(client, triple_paths((order, payment, waybill))) == before


async def test_change_or_cancel_of_unknown_key_is_not_found(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    kept = await matched_triple(client, parties)
    unknown = purchase()
    paths = [*triple_paths(kept), *triple_paths(unknown)]
    before = await snapshot(client, paths)
    assert [before["documents"][path][0] for path in triple_paths(unknown)] == [404, 404, 404]

    for doc_type, app_type in itertools.product(DOC_TYPES, ("2", "3")):
        response = await submit(client, parties, doc_type, doc_of(unknown, doc_type), appType=app_type)
        problem = assert_problem(response, 404, "DOCUMENT_NOT_FOUND")
        if doc_type == "order":
            assert problem["cebReturnStatus"] == "-301009", (app_type, problem)
        assert await snapshot(client, paths) == before, (doc_type, app_type)


# --- appType 3: cancel ----------------------------------------------------------------------------


async def test_cancel_sends_the_record_back_and_resend_restores_it(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    # A mismatched purchase (a declared one is frozen): the payment is 6.12 short.
    triple = purchase(payment={"amountPaid": "240.00"})
    responses = await post_triple(client, parties, triple)
    assert responses[-1].json()["recordStatus"] == "MISMATCHED", responses[-1].text
    order, payment, waybill = triple

    cancelled = await submit(client, parties, "payment", payment, appType="3")
    assert cancelled.status_code == 200, cancelled.text
    receipt = cancelled.json()
    assert (receipt["state"], receipt["version"], receipt["replayed"]) == ("cancelled", 2, False)
    assert receipt["recordStatus"] == "AWAITING_DOCUMENTS"
    assert receipt["missing"] == ["payment"]
    assert receipt["returnInfo"].startswith("删除申报成功")
    stored = await read(client, doc_path("payment", payment))
    assert (stored["state"], stored["version"]) == ("cancelled", 2)
    record = await record_of(client, receipt)
    assert (record["status"], record["missing"]) == ("AWAITING_DOCUMENTS", ["payment"])
    assert "document_cancelled" in [e["kind"] for e in record["timeline"]]

    before = await snapshot(client, triple_paths(triple))
    again = await submit(client, parties, "payment", payment, appType="3")
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["state"], again.json()["version"]) == ("cancelled", 2)
    assert await snapshot(client, triple_paths(triple)) == before

    changed = await submit(client, parties, "payment", payment, appType="2", note="x")
    assert_problem(changed, 409, "DOCUMENT_CANCELLED")
    assert await snapshot(client, triple_paths(triple)) == before

    assert (await submit(client, parties, "order", order, appType="3")).json()["recordStatus"] == "AWAITING_DOCUMENTS"
    last = await submit(client, parties, "waybill", waybill, appType="3")
    assert last.status_code == 200, last.text
    assert last.json()["recordStatus"] == "CANCELLED"
    assert (await record_of(client, last.json()))["status"] == "CANCELLED"

    # appType 1 after a cancellation stores the document again, as a new version.
    back = await submit(client, parties, "payment", payment)
    assert back.status_code == 200, back.text
    assert "Idempotent-Replayed" not in back.headers
    assert (back.json()["state"], back.json()["version"]) == ("active", 3)
    assert back.json()["recordStatus"] == "AWAITING_DOCUMENTS"
    assert back.json()["missing"] == ["order", "waybill"]
    assert (await submit(client, parties, "order", order)).status_code == 200
    final = await submit(client, parties, "waybill", waybill)
    assert final.status_code == 200, final.text
    assert (final.json()["state"], final.json()["recordStatus"]) == ("active", "MISMATCHED")
    fixed = await submit(client, parties, "payment", payment, appType="2", amountPaid="246.12")
    assert fixed.json()["recordStatus"] == "DECLARED", fixed.text
    assert (await record_of(client, final.json()))["status"] == "DECLARED"


# --- appStatus 1: draft ---------------------------------------------------------------------------


async def test_draft_is_stored_but_not_matched_until_declared(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, payment, waybill = purchase()

    draft = await submit(client, parties, "order", order, appStatus="1")
    assert draft.status_code == 201, draft.text
    assert draft.json()["state"] == "draft"
    assert (await submit(client, parties, "payment", payment)).status_code == 201
    waiting = await submit(client, parties, "waybill", waybill)
    assert waiting.status_code == 201, waiting.text
    assert waiting.json()["recordStatus"] == "AWAITING_DOCUMENTS"
    assert waiting.json()["missing"] == ["order"]
    assert (await read(client, doc_path("order", order)))["state"] == "draft"

    replay = await submit(client, parties, "order", order, appStatus="1")
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (200, "true")
    assert (await record_of(client, waiting.json()))["status"] == "AWAITING_DOCUMENTS"

    declared = await submit(client, parties, "order", order, appStatus="2")
    assert declared.status_code == 200, declared.text
    receipt = declared.json()
    assert (receipt["state"], receipt["version"], receipt["recordStatus"]) == ("active", 2, "DECLARED")
    assert (await record_of(client, receipt))["status"] == "DECLARED"


# --- stale changes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("doc_type", "spec_code"), [("order", "-301014"), ("payment", "-401012"), ("waybill", None)])
async def test_change_older_than_stored_is_stale(
    client: httpx.AsyncClient, doc_type: str, spec_code: str | None
) -> None:
    parties = await file_parties(client)
    triple = purchase(payment={"amountPaid": "1.00"})  # mismatched, so it stays open to changes
    doc = doc_of(triple, doc_type)
    doc["appTime"] = "20261123100000"
    responses = await post_triple(client, parties, triple)
    assert [r.status_code for r in responses] == [201, 201, 201]
    before = await snapshot(client, triple_paths(triple))

    stale = await submit(client, parties, doc_type, doc, appType="2", appTime="20261123095959", note="旧的变更")
    problem = assert_problem(stale, 409, "STALE_MESSAGE")
    if spec_code is not None:
        assert problem["cebReturnStatus"] == spec_code
    assert await snapshot(client, triple_paths(triple)) == before

    fresh = await submit(client, parties, doc_type, doc, appType="2", appTime="20261123100001", note="新的变更")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["version"] == 2
    assert (await read(client, doc_path(doc_type, doc)))["document"]["note"] == "新的变更"


# --- validation: 422 naming each bad field --------------------------------------------------------


def _without(doc: Doc, *path: Any) -> Doc:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return doc


def _set(doc: Doc, value: Any, *path: Any) -> Doc:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


# (doc type, how to break the stored document, the error paths the 422 must name)
INVALID: dict[str, tuple[str, Any, set[str]]] = {
    "missing buyerName": ("order", lambda d: _without(d, "buyerName"), {"buyerName"}),
    "missing line itemName": ("order", lambda d: _without(d, "orderList", 0, "itemName"), {"orderList/0/itemName"}),
    "ebpName too long": ("order", lambda d: _set(d, "平" * 101, "ebpName"), {"ebpName"}),
    "itemName too long": ("order", lambda d: _set(d, "x" * 251, "orderList", 0, "itemName"), {"orderList/0/itemName"}),
    "blank consignee": ("order", lambda d: _set(d, "   ", "consignee"), {"consignee"}),
    "appTime not a date": ("order", lambda d: _set(d, "20261399000000", "appTime"), {"appTime"}),
    "payTime too short": ("payment", lambda d: _set(d, "2026112310", "payTime"), {"payTime"}),
    "6 decimal places": ("order", lambda d: _set(d, "200.000001", "goodsValue"), {"goodsValue"}),
    "20 digits": ("order", lambda d: _set(d, "123456789012345.12345", "goodsValue"), {"goodsValue"}),
    "negative freight": ("order", lambda d: _set(d, "-1", "freight"), {"freight"}),
    "negative amountPaid": ("payment", lambda d: _set(d, "-0.01", "amountPaid"), {"amountPaid"}),
    "qty zero": ("order", lambda d: _set(d, "0", "orderList", 0, "qty"), {"orderList/0/qty"}),
    "gnum zero": ("order", lambda d: _set(d, 0, "orderList", 0, "gnum"), {"orderList/0/gnum"}),
    "no lines": ("order", lambda d: _set(d, [], "orderList"), {"orderList"}),
    "wrong orderType": ("order", lambda d: _set(d, "E", "orderType"), {"orderType"}),
    "wrong appType": ("order", lambda d: _set(d, "4", "appType"), {"appType"}),
    "payerIdType not 1": ("payment", lambda d: _set(d, "2", "payerIdType"), {"payerIdType"}),
    "packNo not 1": ("waybill", lambda d: _set(d, 2, "packNo"), {"packNo"}),
    "currency not a code": ("waybill", lambda d: _set(d, "RMB", "currency"), {"currency"}),
    "misspelt actualPaid": ("order", lambda d: _set(d, "246.12", "actualPaid"), {"actualPaid"}),
    "unknown line field": ("order", lambda d: _set(d, "1", "orderList", 0, "hsCode"), {"orderList/0/hsCode"}),
    "number for a string": ("order", lambda d: _set(d, 123, "buyerName"), {"buyerName"}),
    "string for an amount": ("order", lambda d: _set(d, "abc", "goodsValue"), {"goodsValue"}),
    "bool for an amount": ("waybill", lambda d: _set(d, True, "weight"), {"weight"}),
    "object for a string": ("payment", lambda d: _set(d, {"a": 1}, "payerName"), {"payerName"}),
    "lines not a list": ("order", lambda d: _set(d, "x", "orderList"), {"orderList"}),
    "several at once": (
        "order",
        lambda d: _set(_set(_set(d, "-1", "freight"), "E", "orderType"), "1", "actualPaid"),
        {"freight", "orderType", "actualPaid"},
    ),
}


async def test_invalid_documents_name_each_bad_field(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = await matched_triple(client, parties)
    before = await snapshot(client, triple_paths(triple))

    for case, (doc_type, breaks, paths) in INVALID.items():
        # A change (appType 2) of the stored document that a lax validator would let through.
        body = breaks(copy.deepcopy(doc_of(triple, doc_type)) | {"appType": "2", "note": "改"})
        response = await submit(client, parties, doc_type, body)
        assert response.status_code == 422, (case, response.text)
        problem = assert_problem(response, 422, "VALIDATION_FAILED")
        assert error_paths(problem) == paths, (case, problem["errors"])
        assert all(error["message"] and error["type"] for error in problem["errors"]), case
        assert await snapshot(client, triple_paths(triple)) == before, case


LITERALS: list[tuple[tuple[Any, ...], str, str]] = [
    (("goodsValue",), "1e400", "goodsValue"),
    (("goodsValue",), "-1e400", "goodsValue"),
    (("goodsValue",), "1" + "0" * 400, "goodsValue"),
    (("goodsValue",), "200.000001", "goodsValue"),
    (("orderList", 0, "price"), "1e-7", "orderList/0/price"),
    (("appTime",), "20261399000000", "appTime"),
    (("orderNo",), "12345", "orderNo"),
    (("buyerName",), "null", "buyerName"),
    (("note",), '"NUL\\u0000inside"', "note"),
    (("note",), '"lone \\ud800 surrogate"', "note"),
    (("buyerName",), '"\\u0007"', "buyerName"),
]


async def test_json_literals_are_validated_exactly(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, _, _ = purchase()
    before = await snapshot(client, [doc_path("order", order)])
    assert before["documents"][doc_path("order", order)][0] == 404
    for path, literal, error_path in LITERALS:
        response = await submit_raw(client, parties, "order", with_literal(order, path, literal))
        assert response.status_code == 422, (literal, response.text)
        problem = assert_problem(response, 422, "VALIDATION_FAILED")
        assert error_paths(problem) == {error_path}, (literal, problem["errors"])
        assert await snapshot(client, [doc_path("order", order)]) == before, literal


# --- malformed input: 4xx, never 5xx --------------------------------------------------------------

ORDER_TEXT = json.dumps(purchase(order_no="MALFORMED0001")[0], ensure_ascii=False)

MALFORMED: dict[str, tuple[bytes, str, int, set[str]]] = {
    "broken JSON": (b'{"orderNo": ', "application/json", 400, {"MALFORMED_BODY"}),
    "trailing garbage": (ORDER_TEXT.encode() + b"}", "application/json", 400, {"MALFORMED_BODY"}),
    "empty body": (b"", "application/json", 400, {"MALFORMED_BODY"}),
    "not UTF-8": (b'{"orderNo": "\xff\xfe\xfa"}', "application/json", 400, {"MALFORMED_BODY"}),
    "GBK text": (ORDER_TEXT.encode("gbk"), "application/json", 400, {"MALFORMED_BODY"}),
    "deep nesting": (
        b"[" * 100_000 + b"]" * 100_000,
        "application/json",
        400,
        {"MALFORMED_BODY", "VALIDATION_FAILED", "TOO_MANY_OBJECTS"},
    ),
    "NaN": (ORDER_TEXT.replace('"200.00"', "NaN", 1).encode(), "application/json", 400, {"MALFORMED_BODY"}),
    "Infinity": (ORDER_TEXT.replace('"200.00"', "Infinity", 1).encode(), "application/json", 400, {"MALFORMED_BODY"}),
    "huge integer": (
        ORDER_TEXT.replace('"200.00"', "9" * 5000, 1).encode(),
        "application/json",
        400,
        {"MALFORMED_BODY"},
    ),
    "array instead of object": (f"[{ORDER_TEXT}]".encode(), "application/json", 422, {"VALIDATION_FAILED"}),
    "a string": (b'"order"', "application/json", 422, {"VALIDATION_FAILED"}),
    "null": (b"null", "application/json", 422, {"VALIDATION_FAILED"}),
    "text/plain": (ORDER_TEXT.encode(), "text/plain", 415, {"UNSUPPORTED_MEDIA_TYPE"}),
    "XML content type": (b"<CEB311Message/>", "application/xml", 415, {"UNSUPPORTED_MEDIA_TYPE"}),
    "form": (b"orderNo=1", "application/x-www-form-urlencoded", 415, {"UNSUPPORTED_MEDIA_TYPE"}),
}


async def test_malformed_bodies_are_client_errors(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = await matched_triple(client, parties)
    paths = [*triple_paths(triple), "/api/v1/orders/3120960A01/MALFORMED0001"]
    before = await snapshot(client, paths)
    for case, (body, content_type, status, codes) in MALFORMED.items():
        for batch in (False, True):
            response = await submit_raw(client, parties, "order", body, content_type, batch=batch)
            assert response.status_code == status, (case, batch, response.text)
            assert response.headers["content-type"].startswith(PROBLEM_JSON), case
            assert response.json()["code"] in codes, (case, batch, response.json())
        assert await snapshot(client, paths) == before, case


async def test_exact_decimals_are_kept(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, _, _ = purchase()
    order["orderList"][0] |= {"price": "@@P@@", "totalPrice": "@@P@@"}
    text = json.dumps(order | {"goodsValue": "@@G@@", "acturalPaid": "@@A@@"}, ensure_ascii=False)
    text = (
        text.replace('"@@G@@"', "12345678901234.12345")
        .replace('"@@A@@"', "12345678901280.24345")
        .replace('"@@P@@"', "12345678901234.12345")
    )
    response = await submit_raw(client, parties, "order", text.encode())
    assert response.status_code == 201, response.text
    # 12345678901234.12345 + 46.12 exactly: no amount discrepancy (the tax on such a sum differs from 46.12,
    # which is only the TAX_TOTAL_MISMATCH warning).
    assert [d["code"] for d in response.json()["discrepancies"]] == ["TAX_TOTAL_MISMATCH"]
    stored = (await read(client, doc_path("order", order)))["document"]
    assert stored["goodsValue"] == "12345678901234.12345"
    assert stored["acturalPaid"] == "12345678901280.24345"
    assert stored["orderList"][0]["price"] == "12345678901234.12345"
    assert stored["orderList"][0]["totalPrice"] == "12345678901234.12345"
    assert stored["taxTotal"] == "46.12"


# --- body size ------------------------------------------------------------------------------------


@pytest.fixture
async def small_client(settings: Settings, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The same database behind an app that accepts at most 2048 bytes (``client`` wipes after the test)."""
    small = create_app(settings.model_copy(update={"max_body_bytes": 2048}))
    async with LifespanManager(small):
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=60, headers=WAIT
        ) as http:
            yield http


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, small_client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase(payment={"amountPaid": "1.00"})  # mismatched, so the payment may still change
    await post_triple(client, parties, triple)
    order, payment, _ = triple
    big = json.dumps(order | {"appType": "2", "note": "备注" * 500}, ensure_ascii=False).encode()
    assert len(big) > 2048
    paths = triple_paths(triple)
    before = await snapshot(client, paths)

    sized = await small_client.post(
        "/api/v1/orders", content=big, headers=parties.platform | {"Content-Type": "application/json"}
    )
    assert_problem(sized, 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    chunked = await small_client.post(
        "/api/v1/orders/batch", content=chunks(), headers=parties.platform | {"Content-Type": "application/json"}
    )
    assert_problem(chunked, 413, "PAYLOAD_TOO_LARGE")
    assert await snapshot(client, paths) == before

    # Within the limit the small app stores normally.
    small_body = json.dumps(payment | {"appType": "2", "note": "ok"}, ensure_ascii=False).encode()
    assert len(small_body) <= 2048
    fine = await small_client.post(
        "/api/v1/payments", content=small_body, headers=parties.payment | {"Content-Type": "application/json"}
    )
    assert fine.status_code == 200, fine.text

    # The default limit is 10 MiB.
    huge = b'{"note": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert_problem(await submit_raw(client, parties, "order", huge), 413, "PAYLOAD_TOO_LARGE")


# --- batches --------------------------------------------------------------------------------------


async def test_batch_gives_each_item_its_own_result(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    stored_triple = await matched_triple(client, parties)
    stored_order = stored_triple[0]
    new_order, _, _ = purchase()
    invalid = _without(purchase()[0], "buyerName")
    before = await snapshot(client, triple_paths(stored_triple))

    response = await submit_batch(client, parties, "order", [new_order, invalid, stored_order | {"note": "冲突"}])
    assert response.status_code == 200, response.text
    result = response.json()
    assert [item["index"] for item in result["items"]] == [0, 1, 2]
    assert [item["status"] for item in result["items"]] == [201, 422, 409]
    assert result["summary"] == {"stored": 1, "replayed": 0, "rejected": 2, "accepted": 0}

    good, bad, conflict = result["items"]
    assert good["problem"] is None
    assert (good["receipt"]["state"], good["receipt"]["version"]) == ("active", 1)
    assert good["receipt"]["key"] == {"ebpCode": new_order["ebpCode"], "orderNo": new_order["orderNo"]}
    assert bad["receipt"] is None
    assert bad["problem"]["code"] == "VALIDATION_FAILED"
    assert error_paths(bad["problem"]) == {"items/1/buyerName"}
    assert conflict["receipt"] is None
    assert conflict["problem"]["code"] == "DUPLICATE_DIFFERENT_CONTENT"
    assert conflict["problem"]["cebReturnStatus"] == "-301010"

    assert (await read(client, doc_path("order", new_order)))["version"] == 1
    assert (await client.get(doc_path("order", invalid), headers=ADMIN)).status_code == 404
    after = await snapshot(client, triple_paths(stored_triple))
    assert after["documents"] == before["documents"]
    assert [r for r in after["records"] if r["orderNo"] == stored_order["orderNo"]] == before["records"]


async def test_batch_repeats_within_one_batch(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    first, _, _ = purchase()
    second, _, _ = purchase()
    response = await submit_batch(client, parties, "order", [first, first, second, second | {"note": "另一版"}])
    assert response.status_code == 200, response.text
    result = response.json()
    assert [item["status"] for item in result["items"]] == [201, 200, 201, 409]
    assert result["items"][1]["receipt"]["replayed"] is True
    assert result["items"][3]["problem"]["code"] == "DUPLICATE_DIFFERENT_CONTENT"
    assert result["summary"] == {"stored": 2, "replayed": 1, "rejected": 1, "accepted": 0}
    assert "note" not in (await read(client, doc_path("order", second)))["document"]


BAD_BATCHES: list[Any] = [
    {"items": []},
    {"items": "x"},
    {"items": None},
    {"items": {"0": {}}},
    {"docs": []},
    {},
    [],
    "items",
]


async def test_batch_shape_is_validated(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = await matched_triple(client, parties)
    before = await snapshot(client, triple_paths(triple))
    for body in BAD_BATCHES:
        response = await client.post("/api/v1/orders/batch", json=body, headers=parties.platform)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["code"] == ("BATCH_SIZE" if body == {"items": []} else "VALIDATION_FAILED"), body
        assert error_paths(response.json()) == {"items"}, body
        assert await snapshot(client, triple_paths(triple)) == before, body


async def test_batch_of_101_is_refused_whole(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    orders = [purchase()[0] for _ in range(101)]
    response = await submit_batch(client, parties, "order", orders)
    problem = assert_problem(response, 422, "BATCH_SIZE")
    assert error_paths(problem) == {"items"}
    assert (await read(client, "/api/v1/records?limit=500"))["items"] == []
    assert (await client.get(doc_path("order", orders[0]), headers=ADMIN)).status_code == 404

    # 100 is the limit itself (one document and 99 repeats of it, to stay quick).
    accepted = await submit_batch(client, parties, "order", [orders[0]] * 100)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["summary"] == {"stored": 1, "replayed": 99, "rejected": 0, "accepted": 0}


@pytest.mark.parametrize("sequence", list(itertools.permutations(DOC_TYPES)))
async def test_batches_of_one_purchase_match_in_any_order(client: httpx.AsyncClient, sequence: tuple[str, ...]) -> None:
    parties = await file_parties(client)
    purchases = [purchase() for _ in range(3)]
    last: dict[str, Any] = {}
    for step, doc_type in enumerate(sequence):
        items = [doc_of(p, doc_type) for p in purchases]
        items = items[::-1] if step % 2 else items  # items of a batch in either order too
        response = await submit_batch(client, parties, doc_type, items)
        assert response.status_code == 200, response.text
        assert [item["status"] for item in response.json()["items"]] == [201, 201, 201]
        last = response.json()
    assert [item["receipt"]["recordStatus"] for item in last["items"]] == ["DECLARED"] * 3
    for p in purchases:
        page = await read(client, f"/api/v1/records?orderNo={p[0]['orderNo']}")
        [record] = page["items"]
        assert (record["status"], record["missing"], record["discrepancies"]) == ("DECLARED", [], [])


# --- filing: the enterprises a document names -----------------------------------------------------


FILING_CASES: list[tuple[str, dict[str, str], str, str]] = [
    ("order", {"ebcCode": "3120960X99"}, "ENTERPRISE_NOT_FILED", "ebcCode"),
    ("order", {"payCode": "3120960X98"}, "ENTERPRISE_NOT_FILED", "payCode"),
    ("order", {"ebpCode": "3120960X95"}, "ENTERPRISE_NOT_FILED", "ebpCode"),
    ("payment", {"ebpCode": "3120960X97"}, "ENTERPRISE_NOT_FILED", "ebpCode"),
    ("waybill", {"ebpCode": "3120960X96"}, "ENTERPRISE_NOT_FILED", "ebpCode"),
    ("order", {"ebcCode": "3120960P01"}, "ENTERPRISE_ROLE_MISSING", "ebcCode"),
    ("order", {"payCode": "3120960A02"}, "ENTERPRISE_ROLE_MISSING", "payCode"),
    ("payment", {"ebpCode": "3120960L01"}, "ENTERPRISE_ROLE_MISSING", "ebpCode"),
    ("waybill", {"ebpCode": "3120960A02"}, "ENTERPRISE_ROLE_MISSING", "ebpCode"),
]


async def test_named_enterprises_must_be_filed_with_their_role(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    kept = await matched_triple(client, parties)
    triple = purchase()
    paths = [*triple_paths(kept), *triple_paths(triple)]
    before = await snapshot(client, paths)

    for doc_type, changes, code, path in FILING_CASES:
        doc = doc_of(triple, doc_type)
        problem = assert_problem(await submit(client, parties, doc_type, doc, **changes), 422, code)
        [error] = problem["errors"]
        assert error["path"] == path, (changes, problem)
        assert error["code"] == changes[path]
        assert await snapshot(client, paths) == before, changes

    # The same documents naming filed enterprises are accepted.
    responses = await post_triple(client, parties, triple)
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert responses[-1].json()["recordStatus"] == "DECLARED"
