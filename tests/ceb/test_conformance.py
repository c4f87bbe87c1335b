"""Every message we produce keeps to our XSDs, which carry the official facets (issue 11, fixes 1–5), over HTTP.

Each test here failed on the code before: a CEB900 without its required ``ori…`` elements and with two guids;
a CEB621 copying a 25-character itemNo and an unrounded qty1; a receipt echoing a 61-character orderNo; a
replay answered with a new guid and returnTime; a CEB621 with a new guid on every read and no charset; and an
invalid CEB621 sent to the agencies unseen.
"""

from __future__ import annotations

import copy
import re
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from lxml import etree
from sqlalchemy import update

from app.ceb import codec, safe_xml
from app.ceb.conformance import OutgoingMessageInvalid
from app.ceb.kinds import KINDS
from app.models import Declaration
from tests.ceb.conftest import CEB_NS, ceb, message, post_xml, receipts
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_goods, file_parties, post_triple, purchase
from tests.test_dispatch import AGENCIES, detail, drain, stats

P = "{" + CEB_NS + "}"


def _return_elements(body: bytes) -> etree._Element:
    root = safe_xml.parse(body)
    [record] = list(root)
    return record


# --- 1. CEB900 -----------------------------------------------------------------------------------------


async def test_a_ceb900_has_every_ori_element_one_guid_and_unknown_for_an_unreadable_type(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    extended = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ceb:CEB311MessageExtended xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G-1" version="1.0"/>'
    )
    for body, expected_type, expected_id in (
        (extended, "Unknown", "G-1"),  # 21 characters: not a message type the schema's 15 can hold
        (b"<not-xml", "Unknown", ""),
        (message("order", [purchase()[0]]).replace(b"CEB311Message", b"CEB621Message"), "CEB621Message", None),
    ):
        response = await post_xml(client, body, parties.platform)
        assert response.status_code == 400
        receipts(response, "CEB900Message")  # valid against CEB900.xsd
        root = safe_xml.parse(response.content)
        record = _return_elements(response.content)
        names = [etree.QName(e).localname for e in record]
        assert names == [
            "guid",
            "returnStatus",
            "returnInfo",
            "returnTime",
            "oriCopMsgId",
            "oriMessageType",
            "oriBizMessage",
        ]
        assert record.findtext(P + "guid") == root.get("guid")
        assert record.findtext(P + "oriMessageType") == expected_type
        assert (record.findtext(P + "oriBizMessage") or "") == ""  # the body is not echoed back
        if expected_id is not None:
            assert (record.findtext(P + "oriCopMsgId") or "") == expected_id


# --- 3. lengths on the raw text ----------------------------------------------------------------------


async def test_a_value_too_long_as_raw_text_is_refused_by_the_schema_never_echoed(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    order = ceb(purchase()[0])
    order["orderNo"] = "A  " + "B" * 58  # 61 characters; 60 once the double space collapses
    response = await post_xml(client, message("order", [order]), parties.platform)
    assert response.status_code == 400, response.text
    [answer] = receipts(response, "CEB900Message")
    assert answer["returnStatus"] == "-2"
    assert "orderNo" in answer["returnInfo"]


async def test_a_guid_the_wire_model_refuses_is_echoed_as_written_and_the_receipt_stays_valid(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    order = ceb(purchase()[0])
    order["guid"] = " " + order["guid"][:35]  # 36 raw characters (the XSD's C36), 35 once trimmed
    response = await post_xml(client, message("order", [order]), parties.platform)
    assert response.status_code == 200, response.text
    [answer] = receipts(response, "CEB312Message")  # valid: the guid echoed has its 36 characters
    assert answer["returnStatus"] == "-900001"
    assert _return_elements(response.content).findtext(P + "guid") == order["guid"]


# --- 4. stable answers ---------------------------------------------------------------------------------


async def test_a_replayed_message_gets_the_identical_receipt(
    accepting_client: httpx.AsyncClient, parties: Parties
) -> None:
    body = message("order", [purchase()[0], purchase()[0]])
    first = await post_xml(accepting_client, body, parties.platform)
    again = await post_xml(accepting_client, body, parties.platform)
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.headers["Records-Stored"], again.headers["Records-Replayed"]) == ("2", "2")
    assert again.content == first.content  # the same root guid and returnTime, byte for byte
    assert {a["returnStatus"] for a in receipts(first, "CEB312Message")} == {"2"}


async def test_the_ceb621_rendering_is_the_same_message_on_every_read_signed_with_its_charset(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    record_id = (await post_triple(client, parties, purchase()))[-1].json()["recordId"]
    path = f"/api/v1/records/{record_id}/declaration"
    reads = [await client.get(path, headers=ADMIN | {"Accept": "application/xml"}) for _ in range(2)]
    assert reads[0].headers["content-type"] == "application/xml; charset=utf-8"
    roots = [safe_xml.parse(read.content) for read in reads]
    # Signed as the official schema requires, and valid against it signature included.
    for root in roots:
        assert safe_xml.validate(root, "CEB621.xsd") == []
    # The same message on every read: its guid, and everything it signs. The signature value itself differs (an
    # SM2 signature is randomised), so the bytes are compared without it.
    assert roots[0].get("guid") == roots[1].get("guid")
    ds = "{http://www.w3.org/2000/09/xmldsig#}"
    for root in roots:
        for value in root.iter(ds + "SignatureValue"):
            value.text = ""
    assert etree.tostring(roots[0]) == etree.tostring(roots[1])
    # Without its signature the message is exactly what the official schema refuses for lack of one.
    for signature in roots[0].findall(ds + "Signature"):
        roots[0].remove(signature)
    [problem] = safe_xml.validate(roots[0], "CEB621.xsd")
    assert "Missing child element" in problem.message
    assert "Signature" in problem.message


# --- 2. CEB621 facets, end to end -------------------------------------------------------------------------


def _one_line(qty: str, price: str, item_no: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    total = format(Decimal(qty) * Decimal(price), "f")
    order, payment, waybill = purchase(
        own_buyer=True, order={"goodsValue": total, "taxTotal": "0", "acturalPaid": total}
    )
    payment["amountPaid"] = total
    order["orderList"] = [
        copy.deepcopy(order["orderList"][0]) | {"itemNo": item_no, "qty": qty, "price": price, "totalPrice": total}
    ]
    return order, payment, waybill


async def test_a_long_item_number_and_a_tiny_legal_quantity_make_a_valid_ceb621_that_clears(
    settings: Any,
) -> None:
    async with serving(settings, supervision_rate_regular=0.0) as (app, client):
        parties = await file_parties(client)
        sku = "SKU-" + "9" * 21  # 25 characters: an order line may hold 30, an inventory line 20
        await file_goods(client, itemNo=sku, qty1Factor="0.00001", unit2=None, qty2Factor=None)
        receipt = (await post_triple(client, parties, _one_line("1.5", "100", sku)))[-1].json()
        assert receipt["recordStatus"] == "DECLARED", receipt
        record_id = receipt["recordId"]
        [line] = (await detail(client, record_id))["declaration"]["inventory"]["inventoryList"]
        assert line["qty1"] == "0.00002"  # 1.5 × 0.00001 = 0.000015, half-up at 5 places
        assert "itemNo" not in line  # the order line of the same gnum holds the SKU
        assert line["gnum"] == 1
        await drain(app)
        record = await detail(client, record_id)
        assert record["status"] == "CLEARED", record["agencies"]
        for agency in AGENCIES:
            assert (await stats(client, agency))["answered"] == 1


async def test_a_legal_quantity_that_rounds_to_zero_is_refused_not_declared_as_zero(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    parties = await file_parties(client)
    await file_goods(client, itemNo="TINY-1", qty1Factor="0.00001", unit2=None, qty2Factor=None)
    receipt = (await post_triple(client, parties, _one_line("0.4", "100", "TINY-1")))[-1].json()
    assert receipt["recordStatus"] == "REJECTED", receipt
    record = await detail(client, receipt["recordId"])
    rejection = record["rejection"]
    assert (rejection["code"], rejection["cebReturnStatus"]) == ("LEGAL_QUANTITY_ROUNDS_TO_ZERO", "-900011")
    assert "line 1: qty1 = 0.4 × 0.00001 rounds to 0" in rejection["returnInfo"]
    assert record["agencies"] == {}  # nothing dispatched


async def test_a_direct_purchase_list_needs_its_conveyance(settings: Any) -> None:
    async with serving(settings, traf_no="", voyage_no="") as (_, client):
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase(own_buyer=True)))[-1].json()
        assert receipt["recordStatus"] == "REJECTED"
        rejection = (await detail(client, receipt["recordId"]))["rejection"]
        assert (rejection["code"], rejection["cebReturnStatus"]) == ("TRANSPORT_NOT_KNOWN", "-900012")
    async with serving(settings, traf_no="CA1234", voyage_no="20261123") as (_, client):
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase(own_buyer=True)))[-1].json()
        inventory = (await detail(client, receipt["recordId"]))["declaration"]["inventory"]
        assert (inventory["trafNo"], inventory["voyageNo"]) == ("CA1234", "20261123")


# --- 5. a message that breaks the schema is never sent ----------------------------------------------------


def _invalid_total(metrics: str, message_type: str) -> float:
    found = re.search(rf'^sw_outgoing_invalid_total\{{message="{message_type}"\}} (\S+)$', metrics, re.MULTILINE)
    assert found is not None, metrics
    return float(found.group(1))


async def test_an_inventory_that_breaks_the_schema_is_not_sent_goes_dead_and_is_counted(settings: Any) -> None:
    async with serving(settings, supervision_rate_regular=0.0) as (app, client):
        parties = await file_parties(client)
        broken, good = [
            (await post_triple(client, parties, purchase(own_buyer=True)))[-1].json()["recordId"] for _ in range(2)
        ]
        async with app.state.sessionmaker() as session, session.begin():
            declaration = await session.get(Declaration, uuid.UUID(broken))
            assert declaration is not None
            inventory = copy.deepcopy(declaration.inventory)
            inventory["inventoryList"][0]["qty1"] = "0.000015"  # what the old composition wrote
            await session.execute(
                update(Declaration).where(Declaration.record_id == declaration.record_id).values(inventory=inventory)
            )
        before = _invalid_total((await client.get("/metrics")).text, "CEB621Message")

        shown = await client.get(f"/api/v1/records/{broken}/declaration", headers=ADMIN | {"Accept": "application/xml"})
        assert shown.status_code == 500
        assert shown.json()["code"] == "OUTGOING_MESSAGE_INVALID"
        assert "qty1" in shown.json()["detail"]

        await drain(app)
        record = await detail(client, broken)
        assert record["status"] == "DECLARED"
        assert {a["status"] for a in record["agencies"].values()} == {"dead"}
        assert all("OUTGOING_MESSAGE_INVALID" in (a["lastError"] or "") for a in record["agencies"].values())
        assert (await detail(client, good))["status"] == "CLEARED"
        for agency in AGENCIES:
            assert (await stats(client, agency))["answered"] == 1  # only the good one reached the agencies
        dead = await client.get("/api/v1/admin/dispatches", params={"status": "dead"}, headers=ADMIN)
        assert {d["recordId"] for d in dead.json()["items"]} == {broken}
        assert all(d["lastError"].startswith("OUTGOING_MESSAGE_INVALID") for d in dead.json()["items"])
        after = _invalid_total((await client.get("/metrics")).text, "CEB621Message")
        assert after >= before + 2  # the rendering, and the dispatch round


def test_every_writer_refuses_what_its_schema_refuses() -> None:
    too_long = codec.ReturnRow("A" * 36, {"ebpCode": "X", "ebcCode": "Y", "orderNo": "N" * 61}, "2", "ok")
    with pytest.raises(OutgoingMessageInvalid) as refused:
        codec.render_receipts(KINDS["order"], [too_long])
    assert refused.value.message == "CEB312Message"
    assert any("orderNo" in p for p in refused.value.problems)
