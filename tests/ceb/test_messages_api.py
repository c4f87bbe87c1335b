"""POST /api/v1/messages: CEB311/411/511 in, CEB312/412/512 receipts out, through the one intake path."""

from __future__ import annotations

import copy
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.ceb import codec, signature
from app.crypto.keys import Algorithm
from app.models import RawMessage
from app.schemas import examples
from tests.ceb.conftest import ceb, message, post_xml, receipts, transfer
from tests.conftest import ADMIN
from tests.factories import Parties, file_enterprise, purchase
from tests.signing import file_certificate, identity, sign


async def _record(client: httpx.AsyncClient, order_no: str) -> dict[str, object]:
    page = await client.get("/api/v1/records", params={"orderNo": order_no}, headers=ADMIN)
    assert page.status_code == 200, page.text
    [summary] = page.json()["items"]
    detail = await client.get(f"/api/v1/records/{summary['id']}", headers=ADMIN)
    assert detail.status_code == 200, detail.text
    result: dict[str, object] = detail.json()
    return result


async def test_a_full_purchase_in_xml_ends_matched(client: httpx.AsyncClient, parties: Parties) -> None:
    order, payment, waybill = (ceb(d) for d in purchase())
    sent = [
        ("order", order, parties.platform, "CEB312Message", ("ebpCode", "ebcCode", "orderNo")),
        ("payment", payment, parties.payment, "CEB412Message", ("payCode", "payTransactionId")),
        ("waybill", waybill, parties.logistics, "CEB512Message", ("logisticsCode", "logisticsNo")),
    ]
    for doc_type, document, headers, root, keys in sent:
        response = await post_xml(client, message(doc_type, [document]), headers)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        assert response.headers["Records-Stored"] == "1"
        assert response.headers["Records-Rejected"] == "0"
        [answer] = receipts(response, root)
        assert answer["returnStatus"] == "120", answer
        assert answer["returnInfo"] == f"新增申报成功[{document['guid']}]"
        assert answer["guid"] == document["guid"]
        assert {k: answer[k] for k in keys} == {k: document[k] for k in keys}
        assert len(answer["returnTime"]) == 17
    record = await _record(client, order["orderNo"])
    assert record["status"] == "DECLARED", record
    assert record["discrepancies"] == []


async def test_a_replay_answers_the_same_and_stores_nothing_new(client: httpx.AsyncClient, parties: Parties) -> None:
    order, _, _ = purchase()
    body = message("order", [ceb(order)])
    first = await post_xml(client, body, parties.platform)
    again = await post_xml(client, body, parties.platform)
    assert first.status_code == again.status_code == 200
    assert receipts(first)[0]["returnInfo"] == receipts(again)[0]["returnInfo"]
    assert receipts(again)[0]["returnStatus"] == "120"
    assert (again.headers["Records-Stored"], again.headers["Records-Replayed"]) == ("0", "1")
    # A resend with a new record guid and new transport time is still the same document.
    resent = message("order", [ceb(order, appTime="20261123111111")])
    third = await post_xml(client, resent, parties.platform)
    assert third.headers["Records-Replayed"] == "1"
    doc = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=parties.platform)
    assert doc.json()["version"] == 1


async def test_a_hundred_record_message_and_the_limit(client: httpx.AsyncClient, parties: Parties) -> None:
    orders = [ceb(purchase()[0]) for _ in range(100)]
    response = await post_xml(client, message("order", orders), parties.platform)
    assert response.status_code == 200, response.text[:500]
    answers = receipts(response, "CEB312Message")
    assert [a["orderNo"] for a in answers] == [o["orderNo"] for o in orders]
    assert {a["returnStatus"] for a in answers} == {"120"}
    assert response.headers["Records-Stored"] == "100"
    page = await client.get("/api/v1/records", params={"limit": 500}, headers=ADMIN)
    assert len(page.json()["items"]) == 100

    too_many = message("order", [ceb(purchase()[0]) for _ in range(101)])
    refused = await post_xml(client, too_many, parties.platform)
    assert refused.status_code == 400
    [answer] = receipts(refused, "CEB900Message")
    assert answer["returnStatus"] == "-2"
    assert "XML_SCHEMA_INVALID" in answer["returnInfo"]
    assert answer["oriMessageType"] == "CEB311Message"


async def test_mixed_good_and_bad_records_get_their_own_answers(client: httpx.AsyncClient, parties: Parties) -> None:
    stored, _, _ = purchase()
    assert (await client.post("/api/v1/orders", json=stored, headers=parties.platform)).status_code == 201
    good_a, good_b = purchase()[0], purchase()[0]
    duplicate = stored | {"goodsValue": "199.00", "acturalPaid": "245.12"}
    change_of_unknown = purchase()[0]
    not_filed = purchase()[0] | {"ebcCode": "3120960Z99"}
    invalid = purchase()[0] | {"buyerIdType": "2"}
    records = [
        ceb(good_a),
        ceb(duplicate),
        ceb(change_of_unknown, appType="2"),
        ceb(not_filed),
        ceb(invalid),
        ceb(good_b),
    ]
    response = await post_xml(client, message("order", records), parties.platform)
    assert response.status_code == 200, response.text
    answers = receipts(response, "CEB312Message")
    statuses = [(a["returnStatus"], a["returnInfo"].split("]")[0] + "]") for a in answers]
    assert statuses == [
        ("120", f"新增申报成功[{records[0]['guid']}]"),
        ("-301010", "[DUPLICATE_DIFFERENT_CONTENT]"),
        ("-301009", "[DOCUMENT_NOT_FOUND]"),
        ("-900002", "[ENTERPRISE_NOT_FILED]"),
        ("-900001", "[VALIDATION_FAILED]"),
        ("120", f"新增申报成功[{records[5]['guid']}]"),
    ]
    assert "appType 2" in answers[1]["returnInfo"]
    assert "buyerIdType" in answers[4]["returnInfo"]
    assert "ebcCode" in answers[3]["returnInfo"]
    assert [a["orderNo"] for a in answers] == [r["orderNo"] for r in records]
    assert response.headers["Records-Stored"] == "2"
    assert response.headers["Records-Rejected"] == "4"
    for good in (good_a, good_b):
        read = await client.get(f"/api/v1/orders/{good['ebpCode']}/{good['orderNo']}", headers=parties.platform)
        assert read.status_code == 200
    for bad in (change_of_unknown, not_filed, invalid):
        read = await client.get(f"/api/v1/orders/{bad['ebpCode']}/{bad['orderNo']}", headers=parties.platform)
        assert read.status_code == 404
    kept = await client.get(f"/api/v1/orders/{stored['ebpCode']}/{stored['orderNo']}", headers=parties.platform)
    assert kept.json()["document"]["goodsValue"] == stored["goodsValue"]


async def test_duplicate_payment_and_waybill_numbers_get_the_spec_codes(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    _, payment, waybill = purchase()
    assert (await post_xml(client, message("payment", [ceb(payment)]), parties.payment)).status_code == 200
    assert (await post_xml(client, message("waybill", [ceb(waybill)]), parties.logistics)).status_code == 200
    other_payment = ceb(payment | {"amountPaid": "1.00"})
    other_waybill = ceb(waybill | {"weight": "9.99"})
    [paid] = receipts(await post_xml(client, message("payment", [other_payment]), parties.payment), "CEB412Message")
    [shipped] = receipts(
        await post_xml(client, message("waybill", [other_waybill]), parties.logistics), "CEB512Message"
    )
    assert (paid["returnStatus"], paid["payTransactionId"]) == ("-401007", payment["payTransactionId"])
    assert (shipped["returnStatus"], shipped["logisticsNo"]) == ("-504012", waybill["logisticsNo"])
    assert paid["returnInfo"].startswith("[DUPLICATE_DIFFERENT_CONTENT]")


async def test_change_and_cancel_by_xml(client: httpx.AsyncClient, parties: Parties) -> None:
    order, _, _ = purchase()
    await post_xml(client, message("order", [ceb(order)]), parties.platform)
    changed = ceb(order | {"note": "改地址"}, appType="2", appTime="20261123120000")
    [answer] = receipts(await post_xml(client, message("order", [changed]), parties.platform))
    assert (answer["returnStatus"], answer["returnInfo"]) == ("120", f"变更申报成功[{changed['guid']}]")
    cancel = ceb(order | {"note": "改地址"}, appType="3", appTime="20261123130000")
    [answer] = receipts(await post_xml(client, message("order", [cancel]), parties.platform))
    assert (answer["returnStatus"], answer["returnInfo"]) == ("120", f"删除申报成功[{cancel['guid']}]")
    read = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=parties.platform)
    assert read.json()["state"] == "cancelled"
    after_cancel = ceb(order, appType="2", appTime="20261123140000")
    [answer] = receipts(await post_xml(client, message("order", [after_cancel]), parties.platform))
    assert answer["returnStatus"] == "-900009"
    assert answer["returnInfo"].startswith("[DOCUMENT_CANCELLED]")


async def test_cop_code_must_be_the_caller_and_delegations_decide_the_rest(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    order, _, _ = purchase()
    # The carrier transmits the platform's order under its own copCode: not delegated yet.
    carrier_sends = message("order", [ceb(order)], cop_code="3120960L01")
    [answer] = receipts(await post_xml(client, carrier_sends, parties.logistics), "CEB312Message")
    assert answer["returnStatus"] == "-900004"
    assert answer["returnInfo"].startswith("[NOT_AUTHORISED_FOR_ENTERPRISE]")
    granted = await client.post(
        "/api/v1/enterprises/3120960A01/delegations",
        json={"agentCode": "3120960L01", "documentTypes": ["order"]},
        headers=ADMIN,
    )
    assert granted.status_code == 201, granted.text
    [answer] = receipts(await post_xml(client, carrier_sends, parties.logistics), "CEB312Message")
    assert answer["returnStatus"] == "120", answer
    read = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=parties.platform)
    assert read.json()["senderCode"] == "3120960L01"
    suspended = await client.patch("/api/v1/enterprises/3120960A01", json={"status": "suspended"}, headers=ADMIN)
    assert suspended.status_code == 200
    for_suspended = message("order", [ceb(purchase()[0])], cop_code="3120960L01")
    [answer] = receipts(await post_xml(client, for_suspended, parties.logistics), "CEB312Message")
    assert (answer["returnStatus"], answer["returnInfo"][:22]) == ("-900005", "[ENTERPRISE_SUSPENDED]")
    await client.patch("/api/v1/enterprises/3120960A01", json={"status": "active"}, headers=ADMIN)

    # copCode naming someone else than the key's enterprise: the whole message is refused, nothing stored.
    other = purchase()[0]
    pretending = message("order", [ceb(other)], cop_code="3120960A01")
    refused = await post_xml(client, pretending, parties.logistics)
    assert refused.status_code == 403
    [answer] = receipts(refused, "CEB900Message")
    assert answer["returnStatus"] == "-900010"
    assert answer["returnInfo"].startswith("[COP_CODE_MISMATCH]")
    read = await client.get(f"/api/v1/orders/{other['ebpCode']}/{other['orderNo']}", headers=ADMIN)
    assert read.status_code == 404


async def test_requests_that_are_not_about_the_message_get_problem_json(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    body = message("order", [ceb(purchase()[0])])
    no_key = await post_xml(client, body, {})
    assert (no_key.status_code, no_key.json()["code"]) == (401, "UNAUTHENTICATED")
    admin = await post_xml(client, body, ADMIN)
    assert (admin.status_code, admin.json()["code"]) == (403, "ENTERPRISE_KEY_REQUIRED")
    as_json = await post_xml(client, body, parties.platform, content_type="application/json")
    assert (as_json.status_code, as_json.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    suspended = await client.patch("/api/v1/enterprises/3120960A01", json={"status": "suspended"}, headers=ADMIN)
    assert suspended.status_code == 200, suspended.text
    blocked = await post_xml(client, body, parties.platform)
    assert (blocked.status_code, blocked.json()["code"]) == (403, "ENTERPRISE_SUSPENDED")


async def test_text_xml_and_a_charset_parameter_are_accepted(client: httpx.AsyncClient, parties: Parties) -> None:
    body = message("order", [ceb(purchase()[0])])
    response = await post_xml(client, body, parties.platform, content_type="text/xml; charset=utf-8")
    assert response.status_code == 200
    assert receipts(response)[0]["returnStatus"] == "120"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"<ceb:CEB311Message xmlns:ceb='http://www.chinaport.gov.cn/ceb'><ceb:Order>", "-1", "XML_NOT_WELL_FORMED"),
        (b"", "-1", "XML_NOT_WELL_FORMED"),
        (b"\x00\x01\x02 not xml", "-1", "XML_NOT_WELL_FORMED"),
        (
            b"<CEB621Message xmlns='http://www.chinaport.gov.cn/ceb' guid='x' version='1.0'/>",
            "-1",
            "MESSAGE_TYPE_NOT_ACCEPTED",
        ),
        (b"<CEB311Message guid='x' version='1.0'/>", "-1", "MESSAGE_TYPE_NOT_ACCEPTED"),
        (
            b"<CEB311Message xmlns='http://www.chinaport.gov.cn/ceb' guid='x' version='1.0'/>",
            "-2",
            "XML_SCHEMA_INVALID",
        ),
    ],
)
async def test_unreadable_messages_get_a_ceb900(
    client: httpx.AsyncClient, parties: Parties, body: bytes, status: str, code: str
) -> None:
    response = await post_xml(client, body, parties.platform)
    assert response.status_code == 400
    [answer] = receipts(response, "CEB900Message")
    assert answer["returnStatus"] == status
    assert answer["returnInfo"].startswith(f"[{code}]")


async def test_a_schema_failure_names_the_line_and_the_rule(client: httpx.AsyncClient, parties: Parties) -> None:
    order = ceb(purchase()[0])
    body = message("order", [order]).replace(b"<ceb:acturalPaid>246.12<", b"<ceb:acturalPaid>246.1.2<")
    line = body[: body.index(b"246.1.2")].count(b"\n") + 1
    response = await post_xml(client, body, parties.platform)
    assert response.status_code == 400
    [answer] = receipts(response, "CEB900Message")
    assert answer["returnStatus"] == "-2"
    assert f"line {line}:" in answer["returnInfo"]
    assert "ceb:acturalPaid" in answer["returnInfo"]
    assert "N19_5" in answer["returnInfo"]
    missing = message("order", [ceb(purchase()[0])]).replace(b"<ceb:orderType>I</ceb:orderType>", b"")
    [answer] = receipts(await post_xml(client, missing, parties.platform), "CEB900Message")
    assert "orderType" in answer["returnInfo"]
    read = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=ADMIN)
    assert read.status_code == 404


EXTRAS = b"""<ceb:BaseSubscribe><ceb:status>ALL</ceb:status><ceb:dxpMode>DXP</ceb:dxpMode>
<ceb:dxpAddress>DXPENT0000458763</ceb:dxpAddress></ceb:BaseSubscribe>
<ceb:ExtendMessage><ceb:name>platform</ceb:name><ceb:version>1.0</ceb:version>
<ceb:Message><shop xmlns="urn:example:shop"><channel>app</channel></shop></ceb:Message></ceb:ExtendMessage>
"""


@pytest.mark.parametrize(
    ("algorithm", "methods"),
    [
        ("SM2", (signature.SM2_SM3, signature.SM3)),
        ("RSA", (signature.RSA_SHA1, signature.SHA1)),
        ("RSA", (signature.RSA_SHA256, signature.SHA256)),
    ],
)
async def test_signature_subscribe_and_extension_are_accepted_and_kept(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties, algorithm: Algorithm, methods: tuple[str, str]
) -> None:
    """A signed message with BaseSubscribe and ExtendMessage: verified (tests/ceb/test_signatures.py has the
    refusals), stored, and its raw body kept byte for byte, signature included."""
    key, certificate = identity(algorithm, str(examples.PLATFORM["code"]))
    await file_certificate(client, str(examples.PLATFORM["code"]), certificate)
    order = ceb(purchase()[0])
    unsigned = message("order", [order]).replace(b"</ceb:CEB311Message>", EXTRAS + b"</ceb:CEB311Message>")
    body = sign(unsigned, key, certificate, methods)
    assert methods[0].encode() in body
    response = await post_xml(client, body, parties.platform)
    assert response.status_code == 200, response.text
    assert receipts(response)[0]["returnStatus"] == "120"
    read = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=parties.platform)
    raw_id = uuid.UUID(read.json()["rawMessageId"])
    async with app.state.sessionmaker() as session:
        raw = await session.scalar(select(RawMessage).where(RawMessage.id == raw_id))
    assert raw is not None
    assert raw.body == body
    assert raw.content_type == "application/xml"


def _default_namespace(body: bytes) -> bytes:
    return body.replace(b"ceb:", b"").replace(b"xmlns:ceb=", b"xmlns=")


async def test_both_namespace_forms_bom_and_chinese_encodings(client: httpx.AsyncClient, parties: Parties) -> None:
    variants: dict[str, bytes] = {}
    orders = {}
    for name in ("prefixed", "default", "other-prefix", "bom", "gb18030", "gbk", "utf-16", "whitespace"):
        orders[name] = ceb(purchase()[0] | {"buyerName": "王小明", "consigneeAddress": "浙江省杭州市西湖区文三路100号"})
        body = message("order", [orders[name]])
        if name == "default":
            body = _default_namespace(body)
        elif name == "other-prefix":
            body = body.replace(b"ceb:", b"x:").replace(b"xmlns:ceb=", b"xmlns:x=")
        elif name == "bom":
            body = b"\xef\xbb\xbf" + body
        elif name in ("gb18030", "gbk", "utf-16"):
            text = body.decode().replace('encoding="UTF-8"', f'encoding="{name.upper()}"')
            body = text.encode(name)
            assert "王小明".encode() not in body
        elif name == "whitespace":
            body = body.replace(b"<ceb:goodsValue>200.00<", b"<ceb:goodsValue>\n   200.00000  \n<")
            body = body.replace(b"<ceb:buyerName>", b"<ceb:buyerName>  ").replace(
                b"</ceb:buyerName>", b"\t</ceb:buyerName>"
            )
        variants[name] = body
    for name, body in variants.items():
        response = await post_xml(client, body, parties.platform)
        assert response.status_code == 200, (name, response.text)
        assert receipts(response)[0]["returnStatus"] == "120", (name, response.text)
        order = orders[name]
        read = await client.get(f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", headers=parties.platform)
        document = read.json()["document"]
        assert document["buyerName"] == "王小明", name
        assert document["consigneeAddress"] == "浙江省杭州市西湖区文三路100号", name
        assert document["goodsValue"] in ("200.00", "200.00000"), name


async def test_xml_and_json_versions_of_one_purchase_give_identical_records(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    for mismatched in (False, True):
        by_json, by_xml = purchase(), purchase()
        if mismatched:
            for triple in (by_json, by_xml):
                triple[1].update(payerName="李四", payerIdNumber="330106198805054329", amountPaid="240.00")
        keys = [parties.platform, parties.payment, parties.logistics]
        for path, document, headers in zip(("orders", "payments", "waybills"), by_json, keys, strict=True):
            assert (await client.post(f"/api/v1/{path}", json=document, headers=headers)).is_success
        for doc_type, document, headers in zip(("order", "payment", "waybill"), by_xml, keys, strict=True):
            response = await post_xml(client, message(doc_type, [ceb(document)]), headers)  # type: ignore[arg-type]
            assert receipts(response)[0]["returnStatus"] == "120"
        json_record = await _record(client, by_json[0]["orderNo"])
        xml_record = await _record(client, by_xml[0]["orderNo"])
        assert json_record["status"] == xml_record["status"] == ("MISMATCHED" if mismatched else "DECLARED")
        numbers = {
            by_xml[0]["orderNo"]: by_json[0]["orderNo"],
            by_xml[1]["payTransactionId"]: by_json[1]["payTransactionId"],
            by_xml[2]["logisticsNo"]: by_json[2]["logisticsNo"],
            # Every test purchase pays at a second of its own (R7 counts buyers paying in one second).
            by_xml[1]["payTime"]: by_json[1]["payTime"],
        }

        def business(record: dict[str, object], renumber: dict[str, str]) -> object:
            def swap(value: object) -> object:
                if isinstance(value, dict):
                    return {k: swap(v) for k, v in value.items()}
                if isinstance(value, list):
                    return [swap(v) for v in value]
                if isinstance(value, str):
                    for number in sorted(renumber, key=len, reverse=True):
                        value = value.replace(number, renumber[number])
                return value

            documents = [
                {k: v for k, v in d["document"].items() if k not in ("guid", "appTime")}  # type: ignore[index]
                for d in record["documents"]  # type: ignore[attr-defined]
            ]
            documents.sort(key=lambda d: sorted(d))
            return swap(
                {
                    "status": record["status"],
                    "missing": record["missing"],
                    "discrepancies": record["discrepancies"],
                    "ebpCode": record["ebpCode"],
                    "orderNo": record["orderNo"],
                    "buyerIdNumber": record["buyerIdNumber"],
                    "documents": documents,
                }
            )

        assert business(xml_record, numbers) == business(json_record, {})


async def test_get_with_accept_xml_renders_the_ceb_form(client: httpx.AsyncClient, parties: Parties) -> None:
    order, payment, waybill = purchase()
    waybill_with_extension = waybill | {"ebpCode": "3120960A01"}
    for path, document, headers in (
        ("orders", order, parties.platform),
        ("payments", payment, parties.payment),
        ("waybills", waybill_with_extension, parties.logistics),
    ):
        assert (await client.post(f"/api/v1/{path}", json=document, headers=headers)).status_code == 201
    reads = {
        "order": (f"/api/v1/orders/{order['ebpCode']}/{order['orderNo']}", parties.platform, "CEB311Message"),
        "payment": (
            f"/api/v1/payments/{payment['payCode']}/{payment['payTransactionId']}",
            parties.payment,
            "CEB411Message",
        ),
        "waybill": (
            f"/api/v1/waybills/{waybill['logisticsCode']}/{waybill['logisticsNo']}",
            parties.logistics,
            "CEB511Message",
        ),
    }
    for doc_type, (url, headers, root) in reads.items():
        as_json = await client.get(url, headers=headers)
        assert as_json.headers["content-type"].startswith("application/json")
        stored = as_json.json()["document"]
        as_xml = await client.get(url, headers={**headers, "Accept": "application/xml"})
        assert as_xml.status_code == 200
        assert as_xml.headers["content-type"].startswith("application/xml")
        parsed = codec.parse_message(as_xml.content)  # our XSD accepts what we render
        assert parsed.kind.message == root
        [record] = parsed.records
        expected = {k: v for k, v in stored.items() if not (doc_type == "waybill" and k == "ebpCode")}
        assert record == expected, doc_type  # JSON -> XML -> JSON gives back the same document
        assert parsed.transfer["copCode"] == headers_owner(doc_type)
        again = await client.get(url, headers={**headers, "Accept": "application/xml"})
        assert again.content == as_xml.content  # stable guid: derived from document and version
    text_xml = await client.get(reads["order"][0], headers={**parties.platform, "Accept": "text/xml"})
    assert text_xml.headers["content-type"].startswith("application/xml")
    prefers_json = await client.get(
        reads["order"][0], headers={**parties.platform, "Accept": "application/json, application/xml;q=0.9"}
    )
    assert prefers_json.headers["content-type"].startswith("application/json")
    stranger = await file_enterprise(client, "3120960A07", "另一个平台", ["platform"])
    refused = await client.get(reads["order"][0], headers={**stranger, "Accept": "application/xml"})
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"


def headers_owner(doc_type: str) -> str:
    return {"order": "3120960A01", "payment": "3120960P01", "waybill": "3120960L01"}[doc_type]


async def test_posting_the_rendered_form_is_a_replay(client: httpx.AsyncClient, parties: Parties) -> None:
    order = copy.deepcopy(examples.ORDER) | {"orderNo": "XMLRT0001"}
    assert (await client.post("/api/v1/orders", json=order, headers=parties.platform)).status_code == 201
    url = f"/api/v1/orders/{order['ebpCode']}/XMLRT0001"
    rendered = await client.get(url, headers={**parties.platform, "Accept": "application/xml"})
    response = await post_xml(client, rendered.content, parties.platform)
    assert response.headers["Records-Replayed"] == "1"
    assert receipts(response)[0]["returnStatus"] == "120"


async def test_transfer_helper_matches_the_xsd() -> None:
    body = codec.render_message("payment", [ceb(examples.PAYMENT)], transfer("3120960P01"))
    assert codec.parse_message(body).transfer["dxpId"] == "DXPENT3120960P01"


async def test_openapi_declares_the_xml_door(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"]["/api/v1/messages"]["post"]
    assert operation["security"] == [{"ApiKey": []}]
    for media in ("application/xml", "text/xml"):
        examples_ = operation["requestBody"]["content"][media]["examples"]
        assert set(examples_) == {"CEB311", "CEB411", "CEB511"}
        for example in examples_.values():
            assert codec.parse_message(example["value"].encode()).records  # valid messages
    ok = operation["responses"]["200"]
    assert {"Records-Stored", "Records-Replayed", "Records-Rejected"} <= set(ok["headers"])
    receipt = codec.parse_receipts(ok["content"]["application/xml"]["example"].encode())
    assert (receipt.message, receipt.problems) == ("CEB312Message", [])
    refused = codec.parse_receipts(operation["responses"]["400"]["content"]["application/xml"]["example"].encode())
    assert (refused.message, refused.problems) == ("CEB900Message", [])
    assert {"application/xml", "application/problem+json"} <= set(operation["responses"]["403"]["content"])
    for path in ("/api/v1/orders/{ebpCode}/{orderNo}", "/api/v1/waybills/{logisticsCode}/{logisticsNo}"):
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        assert {"application/json", "application/xml"} <= set(content)
