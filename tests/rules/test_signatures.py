"""The signature decision at the door (app/rules/signatures.py), as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.ceb import safe_xml
from app.ceb.signature import EnvelopedSignature, read_signature
from app.rules.signatures import FiledCertificate, signature_refusal
from app.schemas import examples
from tests.ceb.conftest import ceb, message
from tests.factories import purchase
from tests.signing import identity, sign

SENDER = str(examples.PLATFORM["code"])
APP_TIME = datetime(2026, 11, 23, 2, 18, tzinfo=UTC)


def _signed() -> tuple[EnvelopedSignature, FiledCertificate]:
    key, certificate = identity("SM2", SENDER)
    found = read_signature(safe_xml.parse(sign(message("order", [ceb(purchase()[0])]), key, certificate)))
    assert found is not None
    filed = FiledCertificate(
        SENDER, certificate.serial_number, certificate.public_key, certificate.not_before, certificate.not_after, None
    )
    return found, filed


def _code(policy: str, signature: EnvelopedSignature | None, filed: FiledCertificate | None) -> str | None:
    refusal = signature_refusal(policy, signature, SENDER, filed, [APP_TIME])
    return None if refusal is None else refusal.code


def test_a_good_signature_passes_under_every_policy_that_looks() -> None:
    signature, filed = _signed()
    assert _code("verify-if-present", signature, filed) is None
    assert _code("required", signature, filed) is None


@pytest.mark.parametrize(
    ("policy", "expected"), [("off", None), ("verify-if-present", None), ("required", "XML_SIGNATURE_REQUIRED")]
)
def test_a_missing_signature(policy: str, expected: str | None) -> None:
    assert _code(policy, None, None) == expected


def test_policy_off_looks_at_nothing() -> None:
    assert _code("off", EnvelopedSignature(problem="anything"), None) is None


def test_each_refusal() -> None:
    signature, filed = _signed()
    assert _code("verify-if-present", EnvelopedSignature(problem="two"), filed) == "XML_SIGNATURE_MALFORMED"
    assert _code("verify-if-present", signature, None) == "XML_CERTIFICATE_NOT_FILED"
    other = FiledCertificate("3120960A02", *list(vars(filed).values())[1:])
    assert _code("verify-if-present", signature, other) == "XML_CERTIFICATE_NOT_FILED"
    revoked = FiledCertificate(*list(vars(filed).values())[:5], revoked_at=APP_TIME)
    assert _code("verify-if-present", signature, revoked) == "XML_CERTIFICATE_REVOKED"
    expired = FiledCertificate(
        SENDER, "1", filed.public_key, APP_TIME - timedelta(days=30), APP_TIME - timedelta(1), None
    )
    assert _code("verify-if-present", signature, expired) == "XML_CERTIFICATE_EXPIRED"
    _, stranger = identity("SM2", "someone else")
    wrong_key = FiledCertificate(SENDER, "1", stranger.public_key, filed.not_before, filed.not_after, None)
    assert _code("verify-if-present", signature, wrong_key) == "XML_SIGNATURE_MISMATCH"
    rsa_key = FiledCertificate(
        SENDER, "1", identity("RSA", SENDER)[1].public_key, filed.not_before, filed.not_after, None
    )
    assert _code("verify-if-present", signature, rsa_key) == "XML_SIGNATURE_MISMATCH"
