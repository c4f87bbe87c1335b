"""X.509 certificates: read one (SM2 or RSA public key) into the facts filing and verification need, and
make self-signed development certificates.

Parsed with ``asn1crypto``, which reads any certificate whatever its key (``cryptography`` refuses to hand
out an SM2 public key). Only what a signature check needs is kept: the key, the validity dates, the serial
number, subject and issuer for people, and the SHA-256 of the DER, by which a message's ``X509Certificate`` is
found among the filed ones.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509
from cryptography import x509 as crypto_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.crypto import sm2
from app.crypto.keys import MIN_RSA_BITS, Algorithm, PrivateKey, PublicKey


class CertificateUnreadable(ValueError):
    """Not one X.509 certificate with an SM2 or RSA public key."""


@dataclass(frozen=True)
class CertificateInfo:
    der: bytes
    public_key: PublicKey
    serial_number: str  # hexadecimal, upper case
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    fingerprint: str  # SHA-256 of the DER, lower-case hex

    @property
    def algorithm(self) -> Algorithm:
        return self.public_key.algorithm

    def pem(self) -> bytes:
        return bytes(pem.armor("CERTIFICATE", self.der))


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def read_certificate(data: bytes) -> CertificateInfo:
    """One certificate, PEM or DER."""
    der = data
    if pem.detect(data):
        try:
            blocks = list(pem.unarmor(data, multiple=True))
        except ValueError as exc:
            raise CertificateUnreadable(f"not PEM: {exc}") from None
        if len(blocks) != 1 or blocks[0][0] != "CERTIFICATE":
            raise CertificateUnreadable("the PEM must hold exactly one CERTIFICATE block")
        der = blocks[0][2]
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        info = CertificateInfo(
            der=der,
            public_key=_public_key(tbs["subject_public_key_info"]),
            serial_number=format(tbs["serial_number"].native, "X"),
            subject=tbs["subject"].human_friendly,
            issuer=tbs["issuer"].human_friendly,
            not_before=validity["not_before"].native.astimezone(UTC),
            not_after=validity["not_after"].native.astimezone(UTC),
            fingerprint=fingerprint(der),
        )
    except CertificateUnreadable:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CertificateUnreadable(f"not an X.509 certificate: {exc}") from None
    return info


def _public_key(spki: asn1_keys.PublicKeyInfo) -> PublicKey:
    algorithm = spki["algorithm"]["algorithm"].native
    if algorithm == "ec":
        parameters = spki["algorithm"]["parameters"]
        if parameters.name != "named" or parameters.chosen.dotted != sm2.CURVE_OID:
            raise CertificateUnreadable("an EC key must be on the SM2 curve (1.2.156.10197.1.301)")
        try:
            return PublicKey("SM2", sm2.public_key_of_point(bytes(spki["public_key"].native)))
        except ValueError as exc:
            raise CertificateUnreadable(str(exc)) from None
    if algorithm == "rsa":
        bits = spki["public_key"].parsed["modulus"].native.bit_length()
        if bits < MIN_RSA_BITS:
            raise CertificateUnreadable(f"an RSA key of {bits} bits is too short (at least {MIN_RSA_BITS})")
        return PublicKey("RSA", spki.dump())
    raise CertificateUnreadable(f"the public key is {algorithm}; SM2 or RSA are accepted")


def self_signed(
    key: PrivateKey, common_name: str, organization: str, valid_from: datetime | None = None, days: int = 365
) -> CertificateInfo:
    """A self-signed certificate of ``key`` (development and tests; real ones come from the E-port CA)."""
    start = (valid_from or datetime.now(UTC)).replace(microsecond=0)
    end = start + timedelta(days=days)
    if key.algorithm == "RSA":
        return read_certificate(_self_signed_rsa(key, common_name, organization, start, end))
    name = x509.Name.build({"common_name": common_name, "organization_name": organization})
    spki = asn1_keys.PublicKeyInfo(
        {
            "algorithm": {
                "algorithm": "ec",
                "parameters": asn1_keys.ECDomainParameters(name="named", value="sm2p256v1"),
            },
            "public_key": b"\x04" + key.public.key,
        }
    )
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(127) | 1,
            "signature": {"algorithm": sm2.SIGNATURE_OID},
            "issuer": name,
            "validity": {"not_before": _time(start), "not_after": _time(end)},
            "subject": name,
            "subject_public_key_info": spki,
            "extensions": [
                {"extn_id": "key_usage", "critical": True, "extn_value": {"digital_signature", "non_repudiation"}},
            ],
        }
    )
    signature = key.sign(tbs.dump(), "sm3")
    cert = x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": sm2.SIGNATURE_OID}, "signature_value": signature}
    )
    return read_certificate(cert.dump())


def _time(moment: datetime) -> x509.Time:
    # RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after.
    return x509.Time(name="utc_time" if moment.year < 2050 else "general_time", value=moment)


def _self_signed_rsa(key: PrivateKey, common_name: str, organization: str, start: datetime, end: datetime) -> bytes:
    private = serialization.load_der_private_key(key.key, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    name = crypto_x509.Name(
        [
            crypto_x509.NameAttribute(crypto_x509.NameOID.COMMON_NAME, common_name),
            crypto_x509.NameAttribute(crypto_x509.NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    cert = (
        crypto_x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(crypto_x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)
