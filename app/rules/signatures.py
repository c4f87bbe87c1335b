"""Whether a CEB XML message's signature lets it in: a pure decision over what the message carries, the
sender's policy and the filed certificate it names (no I/O; the crypto check is CPU only).

Policies (a field of the enterprise's filing, set by an admin):

* ``off`` — signatures are neither required nor checked (kept with the raw message, as before);
* ``verify-if-present`` (the default) — a message without a signature is taken; one with a signature is taken
  only if the signature holds;
* ``required`` — every message must carry a signature that holds.

A signature holds when it is the E-port profile (``app/ceb/signature.py``), its certificate is one filed for
the transmitting enterprise (``BaseTransfer/copCode``, which intake has already matched with the key), not
revoked, valid at every record's ``appTime``, and its digest and value verify with that certificate's key.

Worked example: policy ``verify-if-present``, an order signed with the SM2 certificate filed for the sender,
``appTime`` 20261207120000 inside the certificate's validity → ``None`` (taken). The same order with one
character of ``orderNo`` changed after signing → ``XML_SIGNATURE_MISMATCH``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.ceb.signature import EnvelopedSignature
from app.crypto.keys import PublicKey

SignaturePolicy = Literal["off", "verify-if-present", "required"]
SIGNATURE_POLICIES: tuple[SignaturePolicy, ...] = ("off", "verify-if-present", "required")
DEFAULT_POLICY: SignaturePolicy = "verify-if-present"


@dataclass(frozen=True)
class FiledCertificate:
    """The filed certificate whose fingerprint the message's ``X509Certificate`` has."""

    enterprise_code: str
    serial_number: str
    public_key: PublicKey
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class SignatureRefusal:
    code: str  # a CEB900 code of app/ceb/return_codes.py
    detail: str
    http_status: int = 403


def signature_refusal(
    policy: str,
    signature: EnvelopedSignature | None,
    sender: str,
    certificate: FiledCertificate | None,
    app_times: Sequence[datetime],
) -> SignatureRefusal | None:
    """Why the message is refused, or None when its signature (or its lack of one) is acceptable."""
    if policy == "off":
        return None
    if signature is None:
        if policy == "required":
            return SignatureRefusal(
                "XML_SIGNATURE_REQUIRED", f"Enterprise {sender} must sign its CEB messages (ds:Signature missing)"
            )
        return None
    if signature.problem is not None:
        return SignatureRefusal("XML_SIGNATURE_MALFORMED", f"The ds:Signature is not usable: {signature.problem}", 400)
    if certificate is None or certificate.enterprise_code != sender:
        return SignatureRefusal(
            "XML_CERTIFICATE_NOT_FILED",
            f"The certificate in KeyInfo is not one filed for {sender} (file it with "
            f"POST /api/v1/enterprises/{sender}/certificates)",
        )
    if certificate.revoked_at is not None:
        return SignatureRefusal(
            "XML_CERTIFICATE_REVOKED", f"Certificate {certificate.serial_number} of {sender} was revoked"
        )
    for moment in app_times:
        if not certificate.not_before <= moment <= certificate.not_after:
            return SignatureRefusal(
                "XML_CERTIFICATE_EXPIRED",
                f"Certificate {certificate.serial_number} is valid from {certificate.not_before:%Y-%m-%d %H:%M:%S} "
                f"to {certificate.not_after:%Y-%m-%d %H:%M:%S} UTC, not at appTime {moment:%Y-%m-%d %H:%M:%S %Z}",
            )
    if not signature.verified_by(certificate.public_key):
        return SignatureRefusal(
            "XML_SIGNATURE_MISMATCH",
            "The signature does not match the message: changed after signing, or not made with the key of "
            f"certificate {certificate.serial_number}",
        )
    return None
