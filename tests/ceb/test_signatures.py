"""Signed CEB XML at the door (issue 11): ds:Signature verified against the certificates filed for the sender,
per the sender's policy; a refused message is answered with a CEB900 and nothing of it is stored."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.ceb import safe_xml
from app.ceb.signature import DS_NS
from app.crypto.keys import Algorithm
from app.models import RawMessage, Submission
from app.schemas import examples
from tests.ceb.conftest import ceb, message, post_xml, receipts
from tests.conftest import ADMIN
from tests.factories import Parties, purchase
from tests.signing import file_certificate, identity, serialize, set_policy, sign

PLATFORM = str(examples.PLATFORM["code"])
SELLER = str(examples.SELLER["code"])
ALGORITHMS: list[Algorithm] = ["SM2", "RSA"]
_DS = "{" + DS_NS + "}"


async def _stored(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        raws = await session.scalar(select(func.count()).select_from(RawMessage))
        submissions = await session.scalar(select(func.count()).select_from(Submission))
    return int(raws or 0) + int(submissions or 0)


def _refusal(response: httpx.Response, status: int, code: str, return_status: str) -> None:
    assert response.status_code == status, response.text
    [answer] = receipts(response, "CEB900Message")
    assert answer["returnStatus"] == return_status, answer
    assert answer["returnInfo"].startswith(f"[{code}]"), answer


def _order_message(order_no: str | None = None) -> bytes:
    order, _, _ = purchase(order_no)
    return message("order", [ceb(order)])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a_valid_signature_is_accepted(client: httpx.AsyncClient, parties: Parties, algorithm: Algorithm) -> None:
    key, certificate = identity(algorithm, PLATFORM)
    await file_certificate(client, PLATFORM, certificate)
    response = await post_xml(client, sign(_order_message(), key, certificate), parties.platform)
    assert response.status_code == 200, response.text
    [answer] = receipts(response, "CEB312Message")
    assert answer["returnStatus"] == "120", answer


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("where", ["body", "SignedInfo", "SignatureValue"])
async def test_one_byte_changed_is_refused_and_nothing_is_stored(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties, algorithm: Algorithm, where: str
) -> None:
    key, certificate = identity(algorithm, PLATFORM)
    await file_certificate(client, PLATFORM, certificate)
    root = safe_xml.parse(sign(_order_message(), key, certificate))
    if where == "body":
        element = root.find(".//{http://www.chinaport.gov.cn/ceb}buyerName")
        assert element is not None
        assert element.text
        element.text = element.text[:-1] + "乙"
    elif where == "SignedInfo":
        method = root.find(f".//{_DS}SignatureMethod")
        assert method is not None
        # Still the E-port profile, but SignedInfo is not what was signed (a whitespace text node added).
        method.tail = " "
    else:
        value = root.find(f".//{_DS}SignatureValue")
        assert value is not None
        assert value.text
        raw = bytearray(base64.b64decode(value.text))
        raw[len(raw) // 2] ^= 0x01
        value.text = base64.b64encode(bytes(raw)).decode()
    response = await post_xml(client, serialize(root), parties.platform)
    _refusal(response, 403, "XML_SIGNATURE_MISMATCH", "-1004")
    assert await _stored(app) == 0


async def test_a_certificate_of_another_enterprise_is_refused(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties
) -> None:
    key, certificate = identity("SM2", SELLER)
    await file_certificate(client, SELLER, certificate)  # filed, but for the seller, not for the platform
    response = await post_xml(client, sign(_order_message(), key, certificate), parties.platform)
    _refusal(response, 403, "XML_CERTIFICATE_NOT_FILED", "-900022")
    assert await _stored(app) == 0


async def test_an_unknown_certificate_is_refused(client: httpx.AsyncClient, parties: Parties) -> None:
    key, certificate = identity("RSA", "never filed")
    response = await post_xml(client, sign(_order_message(), key, certificate), parties.platform)
    _refusal(response, 403, "XML_CERTIFICATE_NOT_FILED", "-900022")


async def test_a_certificate_not_valid_at_app_time_is_refused(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties
) -> None:
    # Valid from yesterday: the order's appTime (20261123101800, China time) is before it.
    key, certificate = identity("SM2", PLATFORM, valid_from=datetime.now(UTC) - timedelta(days=1), days=30)
    assert certificate.not_before > datetime(2026, 11, 23, 2, 18, tzinfo=UTC)
    await file_certificate(client, PLATFORM, certificate)
    response = await post_xml(client, sign(_order_message(), key, certificate), parties.platform)
    _refusal(response, 403, "XML_CERTIFICATE_EXPIRED", "-1002")
    assert await _stored(app) == 0


async def test_an_expired_certificate_cannot_be_filed(client: httpx.AsyncClient, parties: Parties) -> None:
    _, certificate = identity("SM2", PLATFORM, valid_from=datetime(2024, 1, 1, tzinfo=UTC), days=30)
    response = await client.post(
        f"/api/v1/enterprises/{PLATFORM}/certificates", json={"pem": certificate.pem().decode()}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "CERTIFICATE_EXPIRED"


async def test_a_revoked_certificate_is_refused(app: FastAPI, client: httpx.AsyncClient, parties: Parties) -> None:
    key, certificate = identity("RSA", PLATFORM)
    filed = await file_certificate(client, PLATFORM, certificate)
    body = sign(_order_message(), key, certificate)
    revoked = await client.delete(f"/api/v1/enterprises/{PLATFORM}/certificates/{filed['id']}", headers=ADMIN)
    assert revoked.status_code == 204, revoked.text
    response = await post_xml(client, body, parties.platform)
    _refusal(response, 403, "XML_CERTIFICATE_REVOKED", "-900023")
    assert await _stored(app) == 0


async def test_a_signature_wrapping_a_second_copy_of_the_order_is_refused(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties
) -> None:
    """The signed original travels inside ExtendMessage; the order the service would read is another one."""
    key, certificate = identity("SM2", PLATFORM)
    await file_certificate(client, PLATFORM, certificate)
    original = safe_xml.parse(sign(_order_message("SIGNED-ORIGINAL"), key, certificate))
    forged = safe_xml.parse(_order_message("FORGED-COPY"))
    extend = forged.makeelement("{http://www.chinaport.gov.cn/ceb}ExtendMessage")
    for name, text in (("name", "wrapped"), ("version", "1.0")):
        extend.append(forged.makeelement("{http://www.chinaport.gov.cn/ceb}" + name))
        extend[-1].text = text
    holder = forged.makeelement("{http://www.chinaport.gov.cn/ceb}Message")
    holder.append(original)
    extend.append(holder)
    forged.append(extend)
    response = await post_xml(client, serialize(forged), parties.platform)
    _refusal(response, 400, "XML_SIGNATURE_MALFORMED", "-1001")
    assert "child of the message's root" in receipts(response)[0]["returnInfo"]
    assert await _stored(app) == 0


async def test_a_signature_moved_onto_another_order_is_refused(client: httpx.AsyncClient, parties: Parties) -> None:
    """The signature of one order, put at the root of a message with another order (with the signed one kept
    in a ds:Object): the enveloped digest covers the forged order, and ds:Object is no part of the profile."""
    key, certificate = identity("RSA", PLATFORM)
    await file_certificate(client, PLATFORM, certificate)
    original = safe_xml.parse(sign(_order_message("SIGNED-ORIGINAL-2"), key, certificate))
    forged = safe_xml.parse(_order_message("FORGED-COPY-2"))
    signature = original.find(_DS + "Signature")
    assert signature is not None
    forged.append(signature)
    response = await post_xml(client, serialize(forged), parties.platform)
    _refusal(response, 403, "XML_SIGNATURE_MISMATCH", "-1004")
    wrapper = signature.makeelement(_DS + "Object")
    wrapper.append(original)
    signature.append(wrapper)
    response = await post_xml(client, serialize(forged), parties.platform)
    _refusal(response, 400, "XML_SIGNATURE_MALFORMED", "-1001")


@pytest.mark.parametrize(("policy", "accepted"), [("off", True), ("verify-if-present", True), ("required", False)])
async def test_a_missing_signature_under_each_policy(
    app: FastAPI, client: httpx.AsyncClient, parties: Parties, policy: str, accepted: bool
) -> None:
    if policy != "verify-if-present":
        await set_policy(client, PLATFORM, policy)
    response = await post_xml(client, _order_message(), parties.platform)
    if accepted:
        assert response.status_code == 200, response.text
        assert receipts(response, "CEB312Message")[0]["returnStatus"] == "120"
    else:
        _refusal(response, 403, "XML_SIGNATURE_REQUIRED", "-900021")
        assert await _stored(app) == 0


async def test_policy_required_takes_a_valid_signature(client: httpx.AsyncClient, parties: Parties) -> None:
    await set_policy(client, PLATFORM, "required")
    key, certificate = identity("SM2", PLATFORM)
    await file_certificate(client, PLATFORM, certificate)
    response = await post_xml(client, sign(_order_message(), key, certificate), parties.platform)
    assert response.status_code == 200, response.text
    assert receipts(response)[0]["returnStatus"] == "120"


async def test_policy_off_checks_nothing(client: httpx.AsyncClient, parties: Parties) -> None:
    await set_policy(client, PLATFORM, "off")
    key, certificate = identity("SM2", "never filed")
    response = await post_xml(client, sign(_order_message(), key, certificate), parties.platform)
    assert response.status_code == 200, response.text


async def test_json_intake_is_unchanged_under_required(client: httpx.AsyncClient, parties: Parties) -> None:
    await set_policy(client, PLATFORM, "required")
    order, _, _ = purchase()
    response = await client.post("/api/v1/orders", json=order, headers=parties.platform)
    assert response.status_code == 201, response.text
