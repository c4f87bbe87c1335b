"""Cancel (撤销, CEB623 → CEB624) and return (退货, CEB625 → CEB626) of a declared inventory: filed as JSON or
CEB XML by the declarant, passed to the mock customs by the dispatcher, answered, and — approved — the record
moves (REVOKED / RETURNED) and the buyer's annual quota is given back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.ceb import codec, safe_xml, signature
from app.ceb.after_release import request_element
from app.config import Settings
from app.crypto.identity import signing_identity
from app.models import InventoryRequest, MatchRecord
from app.schemas import examples
from app.services.inventory_signing import signed_request_message
from app.services.rollups import recompute, stored_cells
from app.worker import Dispatcher
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_enterprise, file_parties, post_triple, purchase

SELLER, PLATFORM = examples.ORDER["ebcCode"], examples.ORDER["ebpCode"]
REASON = "订购人取消订单 (the buyer cancelled)"


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(
        settings,
        supervision_rate_regular=0.0,
        mock_inspection_delay_ms=10,
        dispatch_backoff_base_s=0.001,
        dispatch_backoff_cap_s=0.01,
        public_quota_checks_per_id_day=100,
        public_quota_checks_per_hour=100,
    ) as pair:
        yield pair


async def drain(app: FastAPI, until: float = 20.0) -> None:
    """Run the dispatcher until no declaration and no cancel or return is left to send."""
    worker = Dispatcher(app.state.engine, app.state.sessionmaker, app.state.settings, app.state.adapters)
    deadline = time.monotonic() + until
    idle = 0
    while time.monotonic() < deadline:
        claimed = await worker.run_once()
        await app.state.mock_agencies.wait_for_callbacks()
        idle = 0 if claimed else idle + 1
        if idle >= 2:
            return
        if not claimed:
            await asyncio.sleep(0.01)
    raise AssertionError("the dispatcher did not drain")


async def record(client: httpx.AsyncClient, record_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def cleared(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties, own_buyer: bool = True, **changes: Any
) -> dict[str, Any]:
    """A purchase declared and released (CLEARED); its record."""
    triple = purchase(own_buyer=own_buyer, **changes)
    receipt = (await post_triple(client, parties, triple))[-1].json()
    assert receipt["recordStatus"] == "DECLARED", receipt
    await drain(app)
    body = await record(client, receipt["recordId"])
    assert body["status"] == "CLEARED", body
    return body


async def rollups_agree(app: FastAPI) -> None:
    """The statistics kept as records change equal those recomputed from the records."""
    async with app.state.sessionmaker() as session:
        assert await stored_cells(session) == await recompute(session)


def buyer_of(body: dict[str, Any]) -> dict[str, str]:
    order = next(d["document"] for d in body["documents"] if d["documentType"] == "order")
    return {"idNumber": order["buyerIdNumber"], "name": order["buyerName"], "telephone": order["buyerTelephone"]}


async def quota_used(client: httpx.AsyncClient, buyer: dict[str, str]) -> str:
    answer = await client.post("/api/v1/public/quota-check", json=buyer)
    assert answer.status_code == 200, answer.text
    used: str = answer.json()["used"]
    return used


async def feed_of(client: httpx.AsyncClient, record_id: str, until: Callable[[dict[str, Any]], bool]) -> list[Any]:
    """The record's feed events once one satisfies ``until`` (on PostgreSQL the feed may lag behind a commit
    while another transaction is open: ``wait`` holds the read until something shows)."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(30):
        params: dict[str, Any] = {"limit": 1000, "wait": 1} | ({"after": cursor} if cursor else {})
        page = (await client.get("/api/v1/feed", params=params, headers=ADMIN)).json()
        items += [e for e in page["items"] if e.get("recordId") == record_id]
        cursor = page["nextCursor"]
        if any(until(e) for e in items):
            return items
    raise AssertionError(f"not in the feed: {items}")


def cancel_of(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"ebpCode": body["ebpCode"], "orderNo": body["orderNo"], "reason": REASON, **extra}


async def test_cancel_after_release_revokes_and_gives_the_quota_back(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    body = await cleared(app, client, parties)
    buyer = buyer_of(body)
    assert await quota_used(client, buyer) == "200.00"

    filed = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=parties.seller)
    assert filed.status_code == 201, filed.text
    request = filed.json()
    assert filed.headers["location"] == f"/api/v1/inventory-cancels/{request['id']}"
    assert (request["status"], [r["returnStatus"] for r in request["receipts"]]) == ("declared", ["2"])
    sent = request["request"]
    assert (sent["orderNo"], sent["agentCode"], sent["appType"], sent["reason"]) == (
        body["orderNo"],
        SELLER,
        "1",
        REASON,
    )
    # While customs weighs it, a second request is refused.
    again = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=parties.seller)
    assert (again.status_code, again.json()["code"]) == (409, "REQUEST_PENDING")

    await drain(app)
    done = (await client.get(f"/api/v1/inventory-cancels/{request['id']}", headers=parties.seller)).json()
    assert done["status"] == "approved", done
    assert [r["returnStatus"] for r in done["receipts"]] == ["2", "120", "399"]
    assert done["quotaReturned"] == "200.00000" or float(done["quotaReturned"]) == 200

    after = await record(client, body["id"])
    assert after["status"] == "REVOKED"
    [shown] = after["inventoryRequests"]
    assert (shown["id"], shown["kind"], shown["status"]) == (request["id"], "cancel", "approved")
    await rollups_agree(app)
    assert await quota_used(client, buyer) == "0.00"
    kinds = [(e["kind"], e["detail"].get("message"), e["detail"].get("returnStatus")) for e in after["timeline"]]
    assert ("cancel_requested", None, None) in kinds
    assert [k for k in kinds if k[1] == "CEB624"] == [
        ("agency_receipt", "CEB624", "2"),
        ("agency_receipt", "CEB624", "120"),
        ("agency_receipt", "CEB624", "399"),
    ]
    change = [e["detail"] for e in after["timeline"] if e["kind"] == "status_changed"][-1]
    assert (change["from"], change["to"], change["event"]) == ("CLEARED", "REVOKED", "inventory_cancelled")

    # The feed carries them (so webhooks do).
    mine = await feed_of(client, body["id"], lambda e: e["kind"] == "status_changed" and e["detail"]["to"] == "REVOKED")
    assert [e["detail"]["returnStatus"] for e in mine if e["detail"].get("message") == "CEB624"] == ["2", "120", "399"]
    as_xml = await client.get("/api/v1/feed?limit=1000", headers={**ADMIN, "Accept": "application/xml"})
    assert as_xml.content.count(b"<CEB624Message") == 3

    # The receipts as CEB624, valid against our XSD.
    xml = await client.get(
        f"/api/v1/inventory-cancels/{request['id']}", headers={**parties.seller, "Accept": "application/xml"}
    )
    receipts = codec.parse_receipts(xml.content)
    assert (receipts.message, receipts.problems) == ("CEB624Message", [])
    assert [r["returnStatus"] for r in receipts.records] == ["2", "120", "399"]

    for path in ("inventory-cancels", "inventory-returns"):
        refused = await client.post(f"/api/v1/{path}", json=cancel_of(body), headers=parties.seller)
        assert (refused.status_code, refused.json()["code"]) == (409, "INVENTORY_ALREADY_CANCELLED")
        assert refused.json()["cebReturnStatus"] == "-623002"

    audit = (await client.get("/api/v1/audit?action=inventory.cancel", headers=ADMIN)).json()
    assert [e["targetId"] for e in audit["items"]] == [body["id"]]


async def test_cancel_before_release_waits_for_the_declaration(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    triple = purchase(own_buyer=True)
    receipt = (await post_triple(client, parties, triple))[-1].json()
    assert receipt["recordStatus"] == "DECLARED"
    body = await record(client, receipt["recordId"])
    # The platform may cancel too; customs is sent the cancel only after the inventory itself.
    filed = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=parties.platform)
    assert filed.status_code == 201, filed.text
    await drain(app)
    after = await record(client, body["id"])
    assert after["status"] == "REVOKED"
    [shown] = after["inventoryRequests"]
    assert (shown["id"], shown["kind"], shown["status"]) == (filed.json()["id"], "cancel", "approved")
    await rollups_agree(app)
    changes = [e["detail"]["to"] for e in after["timeline"] if e["kind"] == "status_changed"]
    assert changes[-2:] == ["CLEARED", "REVOKED"]


async def test_a_partial_return_gives_back_its_share(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    line = examples.ORDER["orderList"][0] | {"qty": "2", "totalPrice": "400.00"}
    body = await cleared(
        app,
        client,
        parties,
        order={"goodsValue": "400.00", "taxTotal": "92.24", "acturalPaid": "492.24", "orderList": [line]},
        payment={"amountPaid": "492.24"},
    )
    buyer = buyer_of(body)
    assert await quota_used(client, buyer) == "400.00"

    asked = cancel_of(body, invtRefundList=[{"gnum": 1, "qty": "1"}], reason="质量问题退货 (faulty)")
    filed = await client.post("/api/v1/inventory-returns", json=asked, headers=parties.seller)
    assert filed.status_code == 201, filed.text
    request = filed.json()
    assert request["request"]["invtRefundList"][0]["qty"] == "1"
    assert request["goodsBackBy"] is not None
    await drain(app)
    done = (await client.get(f"/api/v1/inventory-returns/{request['id']}", headers=parties.seller)).json()
    assert (done["status"], [r["returnStatus"] for r in done["receipts"]]) == ("approved", ["2", "120", "399"])
    assert (await record(client, body["id"]))["status"] == "RETURNED"
    await rollups_agree(app)
    assert await quota_used(client, buyer) == "200.00"

    xml = await client.get(f"/api/v1/inventory-returns/{request['id']}", headers={**ADMIN, "Accept": "application/xml"})
    receipts = codec.parse_receipts(xml.content)
    assert (receipts.message, receipts.problems) == ("CEB626Message", [])
    again = await client.post("/api/v1/inventory-returns", json=asked, headers=parties.seller)
    assert (again.status_code, again.json()["code"]) == (409, "INVENTORY_ALREADY_RETURNED")


async def test_returns_the_rules_refuse(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    triple = purchase(own_buyer=True)
    receipt = (await post_triple(client, parties, triple))[-1].json()
    declared = await record(client, receipt["recordId"])
    early = await client.post("/api/v1/inventory-returns", json=cancel_of(declared), headers=parties.seller)
    assert (early.status_code, early.json()["code"], early.json()["cebReturnStatus"]) == (
        409,
        "INVENTORY_NOT_RELEASED",
        "-625001",
    )
    await drain(app)
    body = await record(client, receipt["recordId"])
    for lines, code in (
        ([{"gnum": 2}], "RETURN_LINE_NOT_FOUND"),
        ([{"gnum": 1, "qty": "5"}], "RETURN_QUANTITY_EXCEEDED"),
    ):
        bad = await client.post(
            "/api/v1/inventory-returns", json=cancel_of(body, invtRefundList=lines), headers=parties.seller
        )
        assert (bad.status_code, bad.json()["code"]) == (422, code)
    differs = await client.post(
        "/api/v1/inventory-cancels", json=cancel_of(body, logisticsNo="OTHER"), headers=parties.seller
    )
    assert (differs.status_code, differs.json()["code"]) == (422, "REQUEST_DIFFERS_FROM_INVENTORY")

    # 31 days after release the return period is over (the cancel is still possible).
    async with app.state.sessionmaker() as session, session.begin():
        row = await session.get(MatchRecord, uuid.UUID(body["id"]))
        assert row is not None
        assert row.settled_at is not None
        await session.execute(
            update(MatchRecord).where(MatchRecord.id == row.id).values(settled_at=row.settled_at - timedelta(days=31))
        )
    late = await client.post("/api/v1/inventory-returns", json=cancel_of(body), headers=parties.seller)
    assert (late.status_code, late.json()["code"]) == (409, "RETURN_PERIOD_EXPIRED")
    async with app.state.sessionmaker() as session:
        assert list(await session.scalars(select(InventoryRequest))) == []  # nothing of the refusals was stored

    unreleased = purchase(own_buyer=True)
    unmatched = await client.post("/api/v1/orders", json=unreleased[0], headers=parties.platform)
    pending = await record(client, unmatched.json()["recordId"])
    nothing = await client.post("/api/v1/inventory-cancels", json=cancel_of(pending), headers=parties.platform)
    assert (nothing.status_code, nothing.json()["code"]) == (409, "INVENTORY_NOT_DECLARED")


async def test_only_the_declarant_or_the_platform_may_file(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    body = await cleared(app, client, parties)
    stranger = await file_enterprise(client, "3120960X99", "无关企业", ["platform", "seller"])
    unknown = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=stranger)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "RECORD_NOT_FOUND")
    carrier = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=parties.logistics)
    assert (carrier.status_code, carrier.json()["code"]) == (403, "NOT_AUTHORISED_FOR_ENTERPRISE")
    seen_by_carrier = (await client.get(f"/api/v1/records/{body['id']}", headers=parties.logistics)).json()
    assert seen_by_carrier["inventoryRequests"] == []  # as the declaration: the purchase's own parties only
    official = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=ADMIN)
    assert official.status_code == 403

    # An agent the seller delegated its orders to may file for it.
    agent = await file_enterprise(client, "3120960L77", "报关代理", ["declarant"])
    granted = await client.post(
        f"/api/v1/enterprises/{SELLER}/delegations",
        json={"agentCode": "3120960L77", "documentTypes": ["order"]},
        headers=parties.seller,
    )
    assert granted.status_code in (200, 201), granted.text
    filed = await client.post("/api/v1/inventory-cancels", json=cancel_of(body), headers=agent)
    assert filed.status_code == 201, filed.text
    # Another enterprise cannot read the request either.
    hidden = await client.get(f"/api/v1/inventory-cancels/{filed.json()['id']}", headers=stranger)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "REQUEST_NOT_FOUND")


def _request_xml(body: dict[str, Any], kind: str, transfer_code: str, invt_no: str, **fields: Any) -> bytes:
    inventory = body["declaration"]["inventory"]
    values = {
        **{k: inventory.get(k) for k in ("customsCode", "orderNo", "ebpCode", "ebpName", "ebcCode", "ebcName")},
        **{k: inventory.get(k) for k in ("logisticsNo", "logisticsCode", "logisticsName", "buyerIdType")},
        **{k: inventory.get(k) for k in ("buyerIdNumber", "buyerName", "buyerTelephone", "agentCode", "agentName")},
        "guid": str(uuid.uuid4()).upper(),
        "appType": "1",
        "appTime": "20261207120000",
        "appStatus": "2",
        "invtNo": invt_no,
        "reason": REASON,
        **fields,
    }
    transfer = {"copCode": transfer_code, "copName": "x", "dxpMode": "DXP", "dxpId": transfer_code}
    root = request_element(kind, values, transfer)  # type: ignore[arg-type]
    return codec._serialised(root, False)


async def test_cancel_and_return_through_ceb_xml(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    body = await cleared(app, client, parties)
    xml_headers = {**parties.seller, "Content-Type": "application/xml"}
    # The inventory number customs gave (on its CEB622 receipts) names the inventory in the CEB623 / CEB625.
    ceb622 = await client.get(f"/api/v1/records/{body['id']}/receipts/inventory", headers=parties.seller)
    invt_no = codec.parse_receipts(ceb622.content).records[-1]["invtNo"]
    assert (len(invt_no), invt_no[8]) == (18, "I")

    # A return of a line the inventory lacks: refused in the CEB626 with the spec's code, nothing stored.
    bad = _request_xml(
        body,
        "return",
        SELLER,
        invt_no,
        invtRefundList=[{"gnum": 3, "gcode": "3304990099", "gname": "x", "qty": "1", "unit": "142"}],
    )
    answer = await client.post("/api/v1/messages", content=bad, headers=xml_headers)
    assert answer.status_code == 200, answer.text
    receipts = codec.parse_receipts(answer.content)
    assert (receipts.message, receipts.problems) == ("CEB626Message", [])
    assert receipts.records[0]["returnStatus"] == "-625209"
    assert "RETURN_LINE_NOT_FOUND" in receipts.records[0]["returnInfo"]

    # The cancel: accepted (2), sent to customs signed by the service, approved.
    answer = await client.post(
        "/api/v1/messages", content=_request_xml(body, "cancel", SELLER, invt_no), headers=xml_headers
    )
    assert answer.status_code == 200, answer.text
    receipts = codec.parse_receipts(answer.content)
    assert (receipts.message, receipts.problems) == ("CEB624Message", [])
    assert receipts.records[0]["returnStatus"] == "2"
    async with app.state.sessionmaker() as session:
        [stored] = list(await session.scalars(select(InventoryRequest)))
    sent = safe_xml.parse(stored.message.encode())
    assert safe_xml.validate(sent, "CEB623.xsd") == []  # signed, and valid as it stands
    verified = signature.read_signature(sent)
    assert verified is not None
    assert verified.problem is None
    assert verified.verified_by(signing_identity(app.state.settings).certificate.public_key)
    await drain(app)
    assert (await record(client, body["id"]))["status"] == "REVOKED"

    # Another enterprise's copCode, and a message that breaks the XSD: CEB900.
    other = await client.post(
        "/api/v1/messages", content=_request_xml(body, "cancel", PLATFORM, invt_no), headers=xml_headers
    )
    assert other.status_code == 403
    assert codec.parse_receipts(other.content).message == "CEB900Message"
    broken = _request_xml(body, "cancel", SELLER, invt_no).replace(
        b"<ceb:appType>1</ceb:appType>", b"<ceb:appType>2</ceb:appType>"
    )
    refused = await client.post("/api/v1/messages", content=broken, headers=xml_headers)
    assert refused.status_code == 400
    assert codec.parse_receipts(refused.content).records[0]["returnStatus"] == "-2"


async def test_mock_customs_decides_on_what_it_knows(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    """The mock customs is not told what to answer: a cancel of an inventory it never accepted is refused, and
    one signed by someone else than the single window too."""
    app, client = world
    identity = signing_identity(app.state.settings)
    fields = {
        "guid": str(uuid.uuid4()).upper(), "appType": "1", "appTime": "20261207120000", "appStatus": "2",
        "customsCode": "1501", "orderNo": "NOPE", "ebpCode": PLATFORM, "ebpName": "p", "ebcCode": SELLER,
        "ebcName": "s", "logisticsNo": "WB1", "logisticsCode": "3120960C04", "logisticsName": "l",
        "invtNo": "150120260000000001", "buyerIdType": "1", "buyerIdNumber": "330106199001011234", "buyerName": "b",
        "buyerTelephone": "13800138000", "agentCode": SELLER, "agentName": "s", "reason": REASON,
    }  # fmt: skip
    message = signed_request_message("cancel", fields, identity).decode()
    package = {"recordId": str(uuid.uuid4()), "message": message}
    answer = await client.post("/mock/customs/cancels", json=package, headers={"Idempotency-Key": "k1"})
    assert answer.status_code == 200, answer.text
    [refusal] = answer.json()["receipts"]
    assert refusal["returnStatus"] == "100"
    assert "-623001" in refusal["returnInfo"]
    tampered = message.replace(REASON, "changed after signing")
    answer = await client.post(
        "/mock/customs/cancels", json=package | {"message": tampered}, headers={"Idempotency-Key": "k2"}
    )
    assert "-623029" in answer.json()["receipts"][0]["returnInfo"]


async def test_a_cancelled_purchase_no_longer_counts_against_the_annual_limit(settings: Settings) -> None:
    """The declare stage's quota computation (and the tax agency's own total) give the cancelled value back: a
    purchase refused for the annual limit before the cancel is declared after it."""
    async with serving(
        settings, supervision_rate_regular=0.0, dispatch_backoff_base_s=0.001, annual_limit=Decimal("300")
    ) as (app, client):
        parties = await file_parties(client)
        first = await cleared(app, client, parties, own_buyer=False)
        over = (await post_triple(client, parties, purchase()))[-1].json()
        assert over["recordStatus"] == "REJECTED"  # 200 + 200 > 300
        filed = await client.post("/api/v1/inventory-cancels", json=cancel_of(first), headers=parties.seller)
        assert filed.status_code == 201, filed.text
        await drain(app)
        assert (await record(client, first["id"]))["status"] == "REVOKED"
        again = (await post_triple(client, parties, purchase()))[-1].json()
        assert again["recordStatus"] == "DECLARED", again
        await drain(app)
        assert (await record(client, again["recordId"]))["status"] == "CLEARED"  # the tax agency agrees
