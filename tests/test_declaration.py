"""Declaration (清单) on match: inventory, tax on the record, limits and the buyer's annual quota."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.models import Dispatch
from tests.conftest import ADMIN
from tests.factories import file_parties, post_triple, purchase


def priced(amount: str, buyer: str = "33010619900101123X", **extra: Any) -> tuple[dict[str, Any], ...]:
    """A consistent purchase of one line at ``amount`` (taxTotal 0: only a TAX_TOTAL_MISMATCH warning)."""
    line = {"price": amount, "totalPrice": amount, "qty": "1"}
    order, payment, waybill = purchase(
        order={"goodsValue": amount, "taxTotal": "0", "acturalPaid": amount, "buyerIdNumber": buyer},
        payment={"amountPaid": amount, "payerIdNumber": buyer},
        **extra,
    )
    order["orderList"] = [copy.deepcopy(order["orderList"][0]) | line]
    return order, payment, waybill


async def record(client: httpx.AsyncClient, record_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_matched_purchase_is_declared_with_inventory_tax_and_outbox(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    parties = await file_parties(client)
    triple = purchase()
    responses = await post_triple(client, parties, triple)
    receipt = responses[-1].json()
    assert receipt["recordStatus"] == "DECLARED", receipt
    detail = await record(client, receipt["recordId"])
    assert detail["status"] == "DECLARED"
    assert detail["discrepancies"] == []  # taxTotal 46.12 is the hand-worked tax of the example

    tax = detail["declaration"]["tax"]
    assert (tax["customsTax"], tax["valueAddedTax"], tax["consumptionTax"], tax["taxTotal"]) == (
        "0.00",
        "21.41",
        "24.71",
        "46.12",
    )
    assert tax["dutiableValue"] == "200.00"
    assert tax["lines"] == [
        {"gnum": 1, "taxPrice": "200.00", "customsTax": "0.00", "valueAddedTax": "21.41", "consumptionTax": "24.71"}
    ]

    order, _, waybill = triple
    inventory = detail["declaration"]["inventory"]
    expected_head = {
        "appType": "1",
        "appStatus": "2",
        "orderNo": order["orderNo"],
        "ebpCode": "3120960A01",
        "ebcCode": "3120960A02",
        "logisticsCode": "3120960L01",
        "logisticsNo": waybill["logisticsNo"],
        "ieFlag": "I",
        "customsCode": "1501",
        "portCode": "1501",
        "tradeMode": "9610",
        "trafMode": "5",
        "agentCode": "3120960A02",
        "agentName": "东京优选海外旗舰店",
        "assureCode": "3120960A02",
        "buyerIdType": "1",
        "buyerIdNumber": order["buyerIdNumber"],
        "buyerName": order["buyerName"],
        "consigneeAddress": order["consigneeAddress"],
        "country": "116",
        "currency": "142",
        "packNo": 1,
        "freight": "0",
        "insuredFee": "0",
        "grossWeight": "0.35",
        "billNo": waybill["billNo"],
    }
    assert {k: inventory.get(k) for k in expected_head} == expected_head
    assert len(inventory["guid"]) == 36
    assert len(inventory["declTime"]) == 8
    assert len(inventory["copNo"]) <= 20
    [line] = inventory["inventoryList"]
    assert {
        k: line[k] for k in ("gnum", "itemNo", "gcode", "gname", "qty", "unit", "qty1", "unit1", "qty2", "unit2")
    } == {
        "gnum": 1,
        "itemNo": "JP-SSD-50",
        "gcode": "3304990099",
        "gname": "资生堂红腰子精华液 50ml",
        "qty": "1",
        "unit": "142",
        "qty1": "0.05",
        "unit1": "035",
        "qty2": "1",
        "unit2": "011",
    }
    assert (line["price"], line["totalPrice"], line["currency"], line["country"]) == ("200", "200", "142", "116")

    # One outbox row per agency, pending, in the same transaction as the match.
    assert set(detail["agencies"]) == {"customs", "inspection", "tax", "fx"}
    async with app.state.sessionmaker() as session:
        rows = list(await session.scalars(select(Dispatch).where(Dispatch.record_id == uuid.UUID(detail["id"]))))
    assert sorted(r.agency for r in rows) == ["customs", "fx", "inspection", "tax"]
    assert {r.status for r in rows} == {"pending"}
    changes = [e["detail"]["to"] for e in detail["timeline"] if e["kind"] == "status_changed"]
    assert changes[-2:] == ["MATCHED", "DECLARED"]


async def test_order_with_wrong_tax_total_is_declared_with_a_warning(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase(order={"taxTotal": "40.00", "acturalPaid": "240.00"}, payment={"amountPaid": "240.00"})
    receipt = (await post_triple(client, parties, triple))[-1].json()
    assert receipt["recordStatus"] == "DECLARED"
    [warning] = receipt["discrepancies"]
    assert (warning["code"], warning["severity"], warning["expected"], warning["actual"]) == (
        "TAX_TOTAL_MISMATCH",
        "warning",
        "46.12",
        "40.00",
    )


async def test_goods_not_filed_blocks_the_match(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    order, payment, waybill = purchase()
    order["orderList"][0]["itemNo"] = "NOT-FILED-1"
    receipt = (await post_triple(client, parties, (order, payment, waybill)))[-1].json()
    assert receipt["recordStatus"] == "MISMATCHED"
    assert [d["code"] for d in receipt["discrepancies"]] == ["GOODS_NOT_FILED"]
    assert receipt["discrepancies"][0]["field"] == "order.orderList[0].itemNo"


async def test_over_the_single_limit_is_rejected_and_dispatches_nothing(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, priced("5000.01")))[-1].json()
    assert receipt["recordStatus"] == "REJECTED"
    detail = await record(client, receipt["recordId"])
    assert detail["rejection"]["code"] == "SINGLE_LIMIT_EXCEEDED"
    assert detail["rejection"]["cebReturnStatus"] == "-621005"
    assert detail["agencies"] == {}
    assert "declaration_rejected" in [e["kind"] for e in detail["timeline"]]
    # 5000.00 exactly is within the limit.
    assert (await post_triple(client, parties, priced("5000.00")))[-1].json()["recordStatus"] == "DECLARED"


async def test_annual_quota_counts_the_buyers_declared_purchases(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    buyer = "33010619900101705X"
    for _ in range(5):
        receipt = (await post_triple(client, parties, priced("5000.00", buyer)))[-1].json()
        assert receipt["recordStatus"] == "DECLARED"
    # 25,000 used: 1,000.01 more would pass 26,000 (-621018); another buyer is unaffected.
    over = (await post_triple(client, parties, priced("1000.01", buyer)))[-1].json()
    assert over["recordStatus"] == "REJECTED"
    rejection = (await record(client, over["recordId"]))["rejection"]
    assert (rejection["code"], rejection["cebReturnStatus"]) == ("ANNUAL_QUOTA_EXCEEDED", "-621018")
    assert rejection["breaches"][0]["used"] == "25000.00"
    # The ID number's check letter counts case-insensitively, and the rejected purchase used no quota.
    exact = (await post_triple(client, parties, priced("1000.00", buyer.lower())))[-1].json()
    assert exact["recordStatus"] == "DECLARED"
    other = (await post_triple(client, parties, priced("1000.00", "330106199202022226")))[-1].json()
    assert other["recordStatus"] == "DECLARED"


async def test_declaration_as_ceb621(client: httpx.AsyncClient) -> None:
    from app.ceb import safe_xml
    from app.ceb.signature import read_signature
    from tests.service_keys import service_identity

    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    path = f"/api/v1/records/{receipt['recordId']}/declaration"
    as_json = await client.get(path, headers=ADMIN)
    assert as_json.status_code == 200
    assert as_json.json()["tax"]["taxTotal"] == "46.12"
    as_xml = await client.get(path, headers=ADMIN | {"Accept": "application/xml"})
    assert as_xml.headers["content-type"].startswith("application/xml")
    root = safe_xml.parse(as_xml.content)
    assert root.tag == "{http://www.chinaport.gov.cn/ceb}CEB621Message"
    ns = {"ceb": "http://www.chinaport.gov.cn/ceb"}
    assert (
        root.findtext("ceb:Inventory/ceb:InventoryHead/ceb:logisticsNo", namespaces=ns) == receipt["key"]["logisticsNo"]
    )
    assert root.findtext("ceb:Inventory/ceb:InventoryList/ceb:gcode", namespaces=ns) == "3304990099"
    # Signed by the service: valid against our XSD (ds:Signature required) and verified by its certificate.
    assert safe_xml.validate(root, "CEB621.xsd") == []
    signature = read_signature(root)
    assert signature is not None
    assert signature.problem is None
    assert signature.verified_by(service_identity().identity.certificate.public_key)
    missing = await client.get("/api/v1/records/00000000-0000-0000-0000-000000000000/declaration", headers=ADMIN)
    assert missing.json()["code"] == "DECLARATION_NOT_FOUND"
