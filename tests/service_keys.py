"""The single window's own signing identity in tests: one SM2 key and certificate per test run, written to a
temporary folder, so that no test generates a development key under var/ (SW_SIGNING_* settings)."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from app.crypto.identity import GeneratedIdentity, generate_identity


@cache
def service_identity() -> GeneratedIdentity:
    return generate_identity(Path(tempfile.mkdtemp(prefix="sw-test-keys-")) / "keys", "SM2")


def signing_settings() -> dict[str, Path]:
    """The settings that make the service sign with the test identity (and the mock customs verify with it)."""
    generated = service_identity()
    return {"signing_key_path": generated.key_path, "signing_certificate_path": generated.certificate_path}
