"""Keys, certificates and signed CEB messages made by the test suite itself (SM2 and RSA)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import httpx
from lxml import etree

from app.ceb import safe_xml, signature
from app.crypto import certificates, keys
from app.crypto.certificates import CertificateInfo
from app.crypto.keys import Algorithm, PrivateKey
from tests.conftest import ADMIN


@cache
def identity(
    algorithm: Algorithm, holder: str, valid_from: datetime | None = None, days: int = 730
) -> tuple[PrivateKey, CertificateInfo]:
    """A key and its self-signed certificate (by default valid from a year ago, so at the examples' appTime,
    for two years); the same ones for the same arguments within a test run."""
    key = keys.generate(algorithm)
    start = valid_from or datetime.now(UTC) - timedelta(days=365)
    return key, certificates.self_signed(key, holder, f"test {algorithm} {holder}", start, days)


def sign(body: bytes, key: PrivateKey, certificate: CertificateInfo, methods: tuple[str, str] | None = None) -> bytes:
    """``body`` with an enveloped ds:Signature, as the E-port client writes it."""
    root = safe_xml.parse(body)
    signature.sign(root, key, certificate, methods)
    return serialize(root)


def serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


async def file_certificate(
    client: httpx.AsyncClient, code: str, certificate: CertificateInfo, headers: dict[str, str] | None = None
) -> dict[str, str]:
    response = await client.post(
        f"/api/v1/enterprises/{code}/certificates",
        json={"pem": certificate.pem().decode(), "label": "test"},
        headers=headers or ADMIN,
    )
    assert response.status_code == 201, response.text
    filed: dict[str, str] = response.json()
    return filed


async def set_policy(client: httpx.AsyncClient, code: str, policy: str) -> None:
    response = await client.patch(f"/api/v1/enterprises/{code}", json={"signaturePolicy": policy}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["signaturePolicy"] == policy
