"""Public and private keys of the two signature families we handle: SM2 (with SM3) and RSA (PKCS #1 v1.5).

RSA goes through ``cryptography``. SM2 keys are read and written as PKCS #8 / SEC 1 PEM with ``asn1crypto``
(``cryptography`` refuses the SM2 curve) and used through ``app.crypto.sm2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.crypto import sm2

Algorithm = Literal["SM2", "RSA"]
HashName = Literal["sm3", "sha1", "sha256"]
MIN_RSA_BITS = 2048

asn1_keys.NamedCurve.register("sm2p256v1", sm2.CURVE_OID, 32)

_RSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class KeyError_(ValueError):
    """Key material that cannot be read or used."""


@dataclass(frozen=True)
class PublicKey:
    """``key``: SM2 the 64 bytes ``x ‖ y``; RSA the SubjectPublicKeyInfo DER."""

    algorithm: Algorithm
    key: bytes

    def verify(self, message: bytes, signature: bytes, hash_name: HashName) -> bool:
        if self.algorithm == "SM2":
            return hash_name == "sm3" and sm2.verify(self.key, message, signature)
        if hash_name not in _RSA_HASHES:
            return False
        public = _rsa_public_key(self.key)
        try:
            public.verify(signature, message, padding.PKCS1v15(), _RSA_HASHES[hash_name]())
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class PrivateKey:
    """``key``: SM2 the 32-byte scalar; RSA the PKCS #8 DER."""

    algorithm: Algorithm
    key: bytes
    public: PublicKey

    def sign(self, message: bytes, hash_name: HashName) -> bytes:
        if self.algorithm == "SM2":
            if hash_name != "sm3":
                raise KeyError_("an SM2 key signs with SM3")
            return sm2.sign(self.key, message)
        return _rsa_private_key(self.key).sign(message, padding.PKCS1v15(), _RSA_HASHES[hash_name]())

    def to_pem(self) -> bytes:
        """PKCS #8, unencrypted (a development key; production keys live in a cipher machine or PKCS #12)."""
        if self.algorithm == "RSA":
            return bytes(pem.armor("PRIVATE KEY", self.key))
        ec_key = asn1_keys.ECPrivateKey(
            {
                "version": "ecPrivkeyVer1",
                "private_key": int.from_bytes(self.key, "big"),
                "public_key": b"\x04" + self.public.key,
            }
        )
        ec_key["private_key"].set_encoded_width(32)
        info = asn1_keys.PrivateKeyInfo(
            {
                "version": 0,
                "private_key_algorithm": {"algorithm": "ec", "parameters": _SM2_PARAMETERS},
                "private_key": ec_key,
            }
        )
        return bytes(pem.armor("PRIVATE KEY", info.dump()))


_SM2_PARAMETERS = asn1_keys.ECDomainParameters(name="named", value="sm2p256v1")


# Loaded once per key: reading an RSA private key checks it (tens of milliseconds), and a filed certificate's key
# verifies many messages.
@lru_cache(maxsize=1024)
def _rsa_public_key(spki: bytes) -> rsa.RSAPublicKey:
    public = serialization.load_der_public_key(spki)
    assert isinstance(public, rsa.RSAPublicKey)
    return public


@lru_cache(maxsize=8)
def _rsa_private_key(pkcs8: bytes) -> rsa.RSAPrivateKey:
    private = serialization.load_der_private_key(pkcs8, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private


def generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "SM2":
        public, private = sm2.generate_key_pair()
        return PrivateKey("SM2", private, PublicKey("SM2", public))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    return _rsa_private(rsa_key)


def _rsa_private(rsa_key: rsa.RSAPrivateKey) -> PrivateKey:
    der = rsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PrivateKey("RSA", der, PublicKey("RSA", spki))


def read_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A PEM (PKCS #8 or SEC 1 ``EC PRIVATE KEY`` for SM2; PKCS #8 or PKCS #1 for RSA) private key."""
    sm2_key = _read_sm2_private_key(data)
    if sm2_key is not None:
        return sm2_key
    try:
        loaded = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyError_(f"not a private key we can use: {exc}") from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise KeyError_("the private key is neither SM2 nor RSA")
    return _rsa_private(loaded)


def _read_sm2_private_key(data: bytes) -> PrivateKey | None:
    """The SM2 key in ``data``, or None when it holds another kind of key."""
    try:
        blocks = [(kind, der) for kind, _, der in pem.unarmor(data, multiple=True)]
    except ValueError:
        return None
    for kind, der in blocks:
        try:
            if kind == "PRIVATE KEY":
                info = asn1_keys.PrivateKeyInfo.load(der)
                if info["private_key_algorithm"]["algorithm"].native != "ec" or not _is_sm2(
                    info["private_key_algorithm"]["parameters"]
                ):
                    return None
                ec_key = info["private_key"].parsed
            elif kind == "EC PRIVATE KEY":
                ec_key = asn1_keys.ECPrivateKey.load(der)
                if not _is_sm2(ec_key["parameters"]):
                    return None
            else:
                continue
            scalar = ec_key["private_key"].native
            public = _sm2_public_of(ec_key)
        except (ValueError, TypeError, KeyError) as exc:
            raise KeyError_(f"the SM2 private key cannot be read: {exc}") from None
        return PrivateKey("SM2", int(scalar).to_bytes(32, "big"), PublicKey("SM2", public))
    return None


def _is_sm2(parameters: asn1_keys.ECDomainParameters) -> bool:
    return bool(parameters.name == "named" and parameters.chosen.dotted == sm2.CURVE_OID)


def _sm2_public_of(ec_key: asn1_keys.ECPrivateKey) -> bytes:
    point = ec_key["public_key"]
    if isinstance(point, asn1_keys.ECPointBitString):
        return sm2.public_key_of_point(bytes(point.native))
    raise KeyError_("the SM2 private key does not carry its public key (write it with `openssl pkey`)")
