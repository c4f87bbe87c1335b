"""Filing certificates (POST/GET/DELETE /api/v1/enterprises/{code}/certificates): who may, what is refused."""

from __future__ import annotations

import httpx

from app.schemas import examples
from tests.conftest import ADMIN
from tests.factories import file_parties
from tests.signing import file_certificate, identity

PLATFORM = str(examples.PLATFORM["code"])
SELLER = str(examples.SELLER["code"])


def _path(code: str = PLATFORM) -> str:
    return f"/api/v1/enterprises/{code}/certificates"


async def test_file_list_and_revoke(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    _, sm2_certificate = identity("SM2", "filing")
    _, rsa_certificate = identity("RSA", "filing")
    filed = await file_certificate(client, PLATFORM, sm2_certificate, parties.platform)  # the enterprise itself
    assert filed["algorithm"] == "SM2"
    assert filed["fingerprint"] == sm2_certificate.fingerprint
    assert filed["serialNumber"] == sm2_certificate.serial_number
    assert filed["revokedAt"] is None
    await file_certificate(client, PLATFORM, rsa_certificate)  # an admin
    listed = await client.get(_path(), headers=parties.platform)
    assert [c["algorithm"] for c in listed.json()["items"]] == ["SM2", "RSA"]
    revoked = await client.delete(f"{_path()}/{filed['id']}", headers=parties.platform)
    assert revoked.status_code == 204
    listed = await client.get(_path(), headers=ADMIN)
    assert listed.json()["items"][0]["revokedAt"] is not None
    not_yours = await client.delete(f"{_path()}/{filed['id']}", headers=parties.seller)
    assert not_yours.status_code == 404


async def test_what_is_refused(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    _, certificate = identity("SM2", "refusals")
    body = {"pem": certificate.pem().decode()}
    other = await client.post(_path(), json=body, headers=parties.seller)
    assert other.status_code == 404, other.text  # another enterprise's filing is not visible
    await file_certificate(client, PLATFORM, certificate)
    twice = await client.post(_path(), json=body, headers=ADMIN)
    assert (twice.status_code, twice.json()["code"]) == (409, "CERTIFICATE_EXISTS")
    elsewhere = await client.post(_path(SELLER), json=body, headers=ADMIN)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (409, "CERTIFICATE_EXISTS")
    for junk in ("not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        response = await client.post(_path(), json={"pem": junk}, headers=ADMIN)
        assert (response.status_code, response.json()["code"]) == (422, "CERTIFICATE_UNREADABLE"), response.text
    unknown = await client.post(_path("9999999999"), json=body, headers=ADMIN)
    assert unknown.status_code == 404
    missing = await client.delete(f"{_path()}/00000000-0000-0000-0000-000000000000", headers=ADMIN)
    assert (missing.status_code, missing.json()["code"]) == (404, "CERTIFICATE_NOT_FOUND")


async def test_officials_read_and_only_admins_set_the_policy(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    official = await client.post("/api/v1/officials", json={"label": "海关"}, headers=ADMIN)
    headers = {"X-API-Key": official.json()["key"]}
    assert (await client.get(_path(), headers=headers)).status_code == 200
    _, certificate = identity("RSA", "official")
    refused = await client.post(_path(), json={"pem": certificate.pem().decode()}, headers=headers)
    assert refused.status_code == 403
    own = await client.patch(
        f"/api/v1/enterprises/{PLATFORM}", json={"signaturePolicy": "off"}, headers=parties.platform
    )
    assert own.status_code == 403
    read = await client.get(f"/api/v1/enterprises/{PLATFORM}", headers=parties.platform)
    assert read.json()["signaturePolicy"] == "verify-if-present"
    bad = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"signaturePolicy": "sometimes"}, headers=ADMIN)
    assert bad.status_code == 422
