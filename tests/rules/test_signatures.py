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


def test_each_refusal_says_what_to_do_and_answers_with_its_status() -> None:
    signature, filed = _signed()

    def refusal(policy: str, sig: EnvelopedSignature | None, cert: FiledCertificate | None) -> tuple[str, str, int]:
        found = signature_refusal(policy, sig, SENDER, cert, [APP_TIME])
        assert found is not None
        return found.code, found.detail, found.http_status

    assert refusal("required", None, None) == (
        "XML_SIGNATURE_REQUIRED",
        f"Enterprise {SENDER} must sign its CEB messages (ds:Signature missing)",
        403,
    )
    assert refusal("verify-if-present", EnvelopedSignature(problem="two"), filed) == (
        "XML_SIGNATURE_MALFORMED",
        "The ds:Signature is not usable: two",
        400,
    )
    assert refusal("verify-if-present", signature, None) == (
        "XML_CERTIFICATE_NOT_FILED",
        f"The certificate in KeyInfo is not one filed for {SENDER} (file it with "
        f"POST /api/v1/enterprises/{SENDER}/certificates)",
        403,
    )
    revoked = FiledCertificate(*list(vars(filed).values())[:5], revoked_at=APP_TIME)
    assert refusal("verify-if-present", signature, revoked) == (
        "XML_CERTIFICATE_REVOKED",
        f"Certificate {filed.serial_number} of {SENDER} was revoked",
        403,
    )
    expired = FiledCertificate(
        SENDER, "7", filed.public_key, datetime(2026, 1, 1, tzinfo=UTC), APP_TIME.replace(hour=1), None
    )
    assert refusal("verify-if-present", signature, expired) == (
        "XML_CERTIFICATE_EXPIRED",
        "Certificate 7 is valid from 2026-01-01 00:00:00 to 2026-11-23 01:18:00 UTC, "
        "not at appTime 2026-11-23 02:18:00 UTC",
        403,
    )
    _, stranger = identity("SM2", "someone else")
    wrong_key = FiledCertificate(SENDER, "9", stranger.public_key, filed.not_before, filed.not_after, None)
    assert refusal("verify-if-present", signature, wrong_key) == (
        "XML_SIGNATURE_MISMATCH",
        "The signature does not match the message: changed after signing, or not made with the key of certificate 9",
        403,
    )


def test_a_certificate_is_valid_from_its_first_to_its_last_second() -> None:
    signature, filed = _signed()
    for not_before, not_after in ((APP_TIME, filed.not_after), (filed.not_before, APP_TIME)):
        bounded = FiledCertificate(SENDER, "1", filed.public_key, not_before, not_after, None)
        assert _code("verify-if-present", signature, bounded) is None
