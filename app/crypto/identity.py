"""The service's own signing identity: the key and certificate it signs its CEB621 with.

From settings, in this order: ``SW_SIGNING_PKCS12_PATH`` (+ ``SW_SIGNING_PKCS12_PASSWORD``; RSA — the
``cryptography`` PKCS #12 reader does not know SM2 keys), else ``SW_SIGNING_KEY_PATH`` with
``SW_SIGNING_CERTIFICATE_PATH`` (PEM, SM2 or RSA), else — when ``SW_SIGNING_DEV_KEYS`` is on, as in embedded and
development use — a development key pair with a self-signed certificate under ``SW_SIGNING_DEV_DIR``
(``var/keys``), generated on first use and reused after. ``sw keys generate`` makes one on purpose.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

from app.config import Settings
from app.crypto import certificates, keys
from app.crypto.certificates import CertificateInfo, CertificateUnreadable
from app.crypto.keys import Algorithm, PrivateKey

DEV_COMMON_NAME = "Single Window (development)"
KEY_FILE = "signing-key.pem"
CERTIFICATE_FILE = "signing-certificate.pem"


class SigningNotConfigured(RuntimeError):
    """No usable key and certificate: the service cannot sign what it declares."""


@dataclass(frozen=True)
class SigningIdentity:
    key: PrivateKey
    certificate: CertificateInfo
    source: str  # where it was read from, for people


@dataclass(frozen=True)
class GeneratedIdentity:
    key_path: Path
    certificate_path: Path
    identity: SigningIdentity


def signing_identity(settings: Settings) -> SigningIdentity:
    """The identity of these settings (read once per process and configuration)."""
    password = settings.signing_pkcs12_password.get_secret_value() if settings.signing_pkcs12_password else None
    return _identity(
        settings.signing_pkcs12_path,
        password,
        settings.signing_key_path,
        settings.signing_certificate_path,
        settings.signing_dev_dir if settings.signing_dev_keys else None,
        settings.signing_algorithm,
    )


@lru_cache(maxsize=8)
def _identity(
    pkcs12_path: Path | None,
    pkcs12_password: str | None,
    key_path: Path | None,
    certificate_path: Path | None,
    dev_dir: Path | None,
    algorithm: Algorithm,
) -> SigningIdentity:
    if pkcs12_path is not None:
        return _from_pkcs12(pkcs12_path, pkcs12_password)
    if key_path is not None or certificate_path is not None:
        if key_path is None or certificate_path is None:
            raise SigningNotConfigured("set both SW_SIGNING_KEY_PATH and SW_SIGNING_CERTIFICATE_PATH")
        return read_identity(key_path, certificate_path)
    if dev_dir is None:
        raise SigningNotConfigured(
            "no signing key: set SW_SIGNING_KEY_PATH and SW_SIGNING_CERTIFICATE_PATH (or SW_SIGNING_PKCS12_PATH), "
            "or SW_SIGNING_DEV_KEYS=true for a development key"
        )
    return development_identity(dev_dir, algorithm).identity


def read_identity(key_path: Path, certificate_path: Path) -> SigningIdentity:
    try:
        key = keys.read_private_key(key_path.read_bytes())
        certificate = certificates.read_certificate(certificate_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningNotConfigured(f"cannot read the signing key or certificate: {exc}") from exc
    if certificate.public_key != key.public:
        raise SigningNotConfigured(f"{certificate_path} is not the certificate of the key {key_path}")
    return SigningIdentity(key, certificate, f"{key_path} + {certificate_path}")


def _from_pkcs12(path: Path, password: str | None) -> SigningIdentity:
    try:
        loaded = pkcs12.load_pkcs12(path.read_bytes(), password.encode() if password is not None else None)
    except (OSError, ValueError) as exc:
        raise SigningNotConfigured(f"cannot read the PKCS #12 file {path}: {exc}") from exc
    if not isinstance(loaded.key, rsa.RSAPrivateKey) or loaded.cert is None:
        raise SigningNotConfigured(f"{path} must hold an RSA key and its certificate (SM2 keys: use PEM files)")
    pem = loaded.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        certificate = certificates.read_certificate(loaded.cert.certificate.public_bytes(Encoding.DER))
    except CertificateUnreadable as exc:
        raise SigningNotConfigured(f"the certificate in {path} cannot be used: {exc}") from exc
    return SigningIdentity(keys.read_private_key(pem), certificate, str(path))


def development_identity(directory: Path, algorithm: Algorithm) -> GeneratedIdentity:
    """The development identity kept in ``directory``, generated there first if it has none."""
    key_path, certificate_path = directory / KEY_FILE, directory / CERTIFICATE_FILE
    if not key_path.exists():
        generate_identity(directory, algorithm)
    return GeneratedIdentity(key_path, certificate_path, read_identity(key_path, certificate_path))


def generate_identity(directory: Path, algorithm: Algorithm, replace: bool = False) -> GeneratedIdentity:
    """A new key pair and self-signed certificate (valid two years) written to ``directory``.

    Written to a fresh folder and then renamed into place, so that two processes starting at once never leave a
    key with another key's certificate; the loser of such a race reads the winner's pair."""
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    key = keys.generate(algorithm)
    certificate = certificates.self_signed(key, DEV_COMMON_NAME, "Single Window", days=730)
    staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=directory.parent))
    (staging / CERTIFICATE_FILE).write_bytes(certificate.pem())
    key_file = staging / KEY_FILE
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.to_pem())
    if replace and directory.exists():
        for name in (KEY_FILE, CERTIFICATE_FILE):
            (directory / name).unlink(missing_ok=True)
        directory.rmdir()
    try:
        os.rename(staging, directory)
    except OSError:  # another process made it first (or the folder holds something else)
        for name in (KEY_FILE, CERTIFICATE_FILE):
            (staging / name).unlink(missing_ok=True)
        staging.rmdir()
        if not (directory / KEY_FILE).exists():
            raise
    key_path, certificate_path = directory / KEY_FILE, directory / CERTIFICATE_FILE
    return GeneratedIdentity(key_path, certificate_path, read_identity(key_path, certificate_path))
