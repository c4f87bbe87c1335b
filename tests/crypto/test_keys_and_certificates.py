"""Keys and certificates (app/crypto): SM2 and RSA signatures, PEM round trips, certificates read and refused,
and — when the OpenSSL command line is on the machine — that OpenSSL and we agree on SM2 (signer id
1234567812345678) and on our SM2 certificates."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from app.config import Settings
from app.crypto import certificates, keys, sm2
from app.crypto.certificates import CertificateUnreadable
from app.crypto.identity import SigningNotConfigured, development_identity, read_identity, signing_identity
from tests.signing import identity

OPENSSL = shutil.which("openssl")


@pytest.mark.parametrize("algorithm", ["SM2", "RSA"])
def test_sign_verify_and_pem_round_trip(algorithm: keys.Algorithm) -> None:
    key, certificate = identity(algorithm, "round trip")
    hash_name: keys.HashName = "sm3" if algorithm == "SM2" else "sha256"
    signature = key.sign(b"message", hash_name)
    assert certificate.public_key.verify(b"message", signature, hash_name)
    assert not certificate.public_key.verify(b"messagf", signature, hash_name)
    assert keys.read_private_key(key.to_pem()) == key
    assert certificates.read_certificate(certificate.pem()) == certificate
    assert certificates.read_certificate(certificate.der) == certificate


def test_a_malformed_sm2_signature_is_false_not_an_error() -> None:
    _, certificate = identity("SM2", "round trip")
    for junk in (b"", b"\x30\x00", b"garbage", b"\x30\x06\x02\x01\x00\x02\x01\x01"):
        assert not certificate.public_key.verify(b"message", junk, "sm3")


def test_certificates_we_refuse() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    short_rsa = rsa.generate_private_key(65537, 1024)  # noqa: S505 - a key we must refuse
    for private in (p256, short_rsa):
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(1)
            .not_valid_before(datetime.now(UTC))
            .not_valid_after(datetime.now(UTC) + timedelta(days=1))
            .sign(private, hashes.SHA256())
        )
        with pytest.raises(CertificateUnreadable):
            certificates.read_certificate(cert.public_bytes(serialization.Encoding.PEM))
    _, good = identity("SM2", "twice")
    for junk in (b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", good.pem() + good.pem()):
        with pytest.raises(CertificateUnreadable):
            certificates.read_certificate(junk)


def test_the_signer_id_is_the_gm_t_0009_default() -> None:
    assert sm2.DEFAULT_SIGNER_ID == b"1234567812345678"


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command line")
def test_openssl_and_we_agree_on_sm2(tmp_path: Path) -> None:
    key, certificate = identity("SM2", "interop")
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "cert.pem").write_bytes(certificate.pem())
    (tmp_path / "message").write_bytes(b"CEB signed info")
    (tmp_path / "ours.sig").write_bytes(key.sign(b"CEB signed info", "sm3"))
    run = [str(OPENSSL)]
    distid = ["-sigopt", "distid:1234567812345678"]
    subprocess.run(  # noqa: S603 - our own arguments
        [*run, "x509", "-in", tmp_path / "cert.pem", "-pubkey", "-noout", "-out", tmp_path / "pub.pem"], check=True
    )
    ours = subprocess.run(  # noqa: S603
        [*run, "dgst", "-sm3", "-verify", tmp_path / "pub.pem", *distid, "-signature", tmp_path / "ours.sig",
         tmp_path / "message"], capture_output=True, check=False,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    subprocess.run(  # noqa: S603
        [*run, "dgst", "-sm3", "-sign", tmp_path / "key.pem", *distid, "-out", tmp_path / "theirs.sig",
         tmp_path / "message"], check=True,
    )  # fmt: skip
    assert certificate.public_key.verify(b"CEB signed info", (tmp_path / "theirs.sig").read_bytes(), "sm3")
    verified = subprocess.run(  # noqa: S603
        [*run, "verify", "-CAfile", tmp_path / "cert.pem", tmp_path / "cert.pem"], capture_output=True, check=False
    )
    assert verified.returncode == 0, verified.stderr


def test_a_development_identity_is_made_once_and_reused(tmp_path: Path) -> None:
    first = development_identity(tmp_path / "keys", "SM2")
    again = development_identity(tmp_path / "keys", "SM2")
    assert first.identity == again.identity
    assert first.key_path.stat().st_mode & 0o077 == 0
    settings = Settings(_env_file=None, signing_dev_dir=tmp_path / "dev")  # type: ignore[call-arg]
    assert signing_identity(settings).certificate.algorithm == "SM2"
    assert (tmp_path / "dev" / "signing-key.pem").exists()
    off = Settings(_env_file=None, signing_dev_keys=False, signing_dev_dir=tmp_path / "none")  # type: ignore[call-arg]
    with pytest.raises(SigningNotConfigured):
        signing_identity(off)


def test_identities_from_files_and_pkcs12(tmp_path: Path) -> None:
    key, certificate = identity("RSA", "pkcs12")
    _, other = identity("RSA", "someone else")
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "other.pem").write_bytes(other.pem())
    with pytest.raises(SigningNotConfigured, match="is not the certificate of the key"):
        read_identity(tmp_path / "key.pem", tmp_path / "other.pem")
    private = serialization.load_pem_private_key(key.to_pem(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    bundle = pkcs12.serialize_key_and_certificates(
        b"sw", private, x509.load_der_x509_certificate(certificate.der), None,
        serialization.BestAvailableEncryption(b"secret"),
    )  # fmt: skip
    (tmp_path / "sw.p12").write_bytes(bundle)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, signing_pkcs12_path=tmp_path / "sw.p12", signing_pkcs12_password="secret"
    )
    loaded = signing_identity(settings)
    assert loaded.key == key
    assert loaded.certificate == certificate
