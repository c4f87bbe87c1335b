"""SM2 signatures with SM3 (GB/T 32918, GM/T 0009), through Tongsuo (``tongsuopy``, the OpenSSL fork of the
OpenAtom Tongsuo project, with its own SM2 code). The one module that calls an SM2 library: changing the
library is changing this file.

Why Tongsuo: ``cryptography`` hashes SM3 but exposes no SM2 keys or signatures, and refuses an SM2 public
key in a certificate. Measured on the project machine, one core, a 800-byte message (``bench/xml_codec.py``
measures whole messages; docs/xml.md has the figures): ``tongsuopy`` 2,400 verifications/s and 2,500
signatures/s; ``gmssl-pyx`` (GmSSL 3.2, maintained) 1,650 and 290, and it writes a trace to stderr for every
signature that fails; ``gmssl`` (pure Python) is far slower. Only Tongsuo clears the target of 1,000 verified
messages a second with room to spare. Its Python binding has had no release since 2023 (Tongsuo 8.3): we use
nothing of it but SM2 sign / verify over raw keys, and signatures reach it only after asn1crypto has read them.

**Signer id.** An SM2 signature hashes ``Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)`` before the message,
so signer and verifier must use the same id. GM/T 0009-2012 names the default ``1234567812345678``; the China
E-port client and cipher machines use that default (the E-port documents no other), as Tongsuo does when
asked for ``ECDSA(SM3)`` on an SM2 key, and as the OpenSSL command line does with
``-sigopt distid:1234567812345678`` (tests/crypto check both).

Keys travel as: public key 64 bytes ``x ‖ y`` (a certificate's point without its ``04`` prefix), private key
32 bytes. Signatures are DER ``SEQUENCE { r INTEGER, s INTEGER }``, what XML-DSig peers put in
``SignatureValue`` for SM2 (GM/T 0010).
"""

from __future__ import annotations

from functools import lru_cache

from asn1crypto import core
from tongsuopy.crypto import hashes
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

DEFAULT_SIGNER_ID = b"1234567812345678"  # what Tongsuo applies; stated here for the docs and the tests
CURVE_OID = "1.2.156.10197.1.301"  # sm2p256v1 (GM/T 0006)
SIGNATURE_OID = "1.2.156.10197.1.501"  # SM2-with-SM3, for X.509 signatures
# The order n of the SM2 curve (GB/T 32918.5): r and s of a valid signature lie in [1, n - 1].
_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_ALGORITHM = ec.ECDSA(hashes.SM3())


class _Signature(core.Sequence):  # type: ignore[misc]  # asn1crypto has no type hints
    _fields = [("r", core.Integer), ("s", core.Integer)]  # noqa: RUF012 - asn1crypto's declaration style


def generate_key_pair() -> tuple[bytes, bytes]:
    """A new (public 64 bytes, private 32 bytes) pair."""
    private = ec.generate_private_key(ec.SM2())
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    return _public_bytes(private.public_key()), scalar


def sign(private_key: bytes, message: bytes) -> bytes:
    """The DER signature of ``message`` (SM3 with Z over the default signer id)."""
    signature: bytes = _private(private_key).sign(message, _ALGORITHM)
    return signature


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` (DER) is ``message`` signed by the key of ``public_key``."""
    if not _well_formed(signature):
        return False
    try:
        _public(public_key).verify(signature, message, _ALGORITHM)
    except (InvalidSignature, ValueError):
        return False
    return True


def _well_formed(signature: bytes) -> bool:
    try:
        parsed = _Signature.load(signature, strict=True)
        r, s = parsed["r"].native, parsed["s"].native
    except (ValueError, TypeError):
        return False
    return isinstance(r, int) and isinstance(s, int) and 0 < r < _ORDER and 0 < s < _ORDER


def public_key_of_point(point: bytes) -> bytes:
    """The 64-byte key of an uncompressed point ``04 ‖ x ‖ y`` (as in a certificate); ValueError when it is not
    a point of the curve."""
    if len(point) != 65 or point[0] != 4:
        raise ValueError("an SM2 public key is an uncompressed point of 65 bytes")
    _public(point[1:])  # Tongsuo checks that the point lies on the curve
    return point[1:]


@lru_cache(maxsize=1024)
def _public(public_key: bytes) -> ec.EllipticCurvePublicKey:
    # Cached: a filed certificate's key verifies many messages, and building the key object costs a point check.
    if len(public_key) != 64:
        raise ValueError("an SM2 public key is 64 bytes")
    x, y = int.from_bytes(public_key[:32], "big"), int.from_bytes(public_key[32:], "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SM2()).public_key()


@lru_cache(maxsize=8)
def _private(private_key: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SM2())


def _public_bytes(public: ec.EllipticCurvePublicKey) -> bytes:
    numbers = public.public_numbers()
    x: int = numbers.x
    y: int = numbers.y
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")
