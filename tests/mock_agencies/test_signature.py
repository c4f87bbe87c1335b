"""Mock customs checks the single window's signature on the CEB621 (-621029) and compares the signed list with
the declaration (-621028) — pure rules, then over HTTP."""

from __future__ import annotations

from app.crypto.certificates import CertificateInfo
from app.crypto.identity import SigningIdentity
from app.mock_agencies.rules import customs_decision
from app.mock_agencies.rules.signature import signature_problems
from app.services.inventory_signing import signed_inventory_message
from tests.mock_agencies.conftest import AgencyClientFactory
from tests.mock_agencies.packages import package
from tests.service_keys import service_identity
from tests.signing import identity


def _certificate() -> CertificateInfo:
    return service_identity().identity.certificate


def test_a_package_signed_by_the_single_window_passes() -> None:
    assert signature_problems(package("customs"), _certificate()) == []


def test_what_mock_customs_refuses() -> None:
    unsigned = package("customs", inventoryMessage=None)
    assert signature_problems(unsigned, _certificate())[0].startswith("-621029")
    signed = package("customs")
    tampered = signed | {"inventoryMessage": signed["inventoryMessage"].replace("JP-SSD-50", "JP-SSD-51", 1)}
    assert signature_problems(tampered, _certificate())[0].startswith("-621029")
    key, certificate = identity("SM2", "not the single window")
    stranger = signed_inventory_message(signed["inventory"], SigningIdentity(key, certificate, "test")).decode()
    assert "单一窗口" in signature_problems(signed | {"inventoryMessage": stranger}, _certificate())[0]
    other_order = package("customs")
    other_order["inventory"] = other_order["inventory"] | {"orderNo": "ANOTHER"}
    [problem] = signature_problems(other_order, _certificate())
    assert problem.startswith("-621028")
    assert "orderNo" in problem
    assert customs_decision(other_order, inspect=False, certificate=_certificate()).receipts[0].return_status == "100"


async def test_mock_customs_refuses_an_unsigned_list_over_http(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        good = await http.post("/mock/customs/declarations", json=package("customs"), headers={"Idempotency-Key": "a"})
        assert good.json()["receipts"][0]["returnStatus"] == "120"
        bad = await http.post(
            "/mock/customs/declarations",
            json=package("customs", inventoryMessage=None),
            headers={"Idempotency-Key": "b"},
        )
        [receipt] = bad.json()["receipts"]
        assert receipt["returnStatus"] == "100"
        assert "-621029" in receipt["returnInfo"]
