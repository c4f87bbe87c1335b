"""Webhook signing secrets encrypted at rest: AES-256-GCM (``cryptography``), the key derived with HKDF-SHA256
from ``SW_WEBHOOK_SECRET_KEYS``, the subscription's id as associated data (a sealed secret copied onto another
row does not open there). A stored value is ``enc1:`` + base64url(nonce ‖ ciphertext ‖ tag).

The keys are a comma-separated list, current first: a secret is sealed with the first and opened with
whichever opens it, so a key can be replaced by putting the new one first and re-sealing (``reseal``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "enc1:"
_NONCE_BYTES = 12
_INFO = b"single-window webhook signing secrets v1"


class SecretUnreadable(ValueError):
    """A stored secret that none of the configured keys opens (or that is not sealed at all)."""


def _aead(key: str) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.encode()))


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("SW_WEBHOOK_SECRET_KEYS is empty")
        self._keys = [_aead(k) for k in keys]

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[0].encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, stored: str, context: str) -> str:
        if not stored.startswith(PREFIX):
            raise SecretUnreadable("the stored secret is not sealed")
        encoded = stored[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError as exc:
            raise SecretUnreadable("the stored secret is not valid base64") from exc
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for key in self._keys:
            try:
                return key.decrypt(nonce, sealed, context.encode()).decode()
            except InvalidTag:
                continue
        raise SecretUnreadable("no key of SW_WEBHOOK_SECRET_KEYS opens the stored secret")

    def reseal(self, stored: str, context: str) -> str:
        """Sealed with the current key (a plain value from before encryption is sealed as it is)."""
        return self.seal(self.open(stored, context) if stored.startswith(PREFIX) else stored, context)
