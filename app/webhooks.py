"""Standard Webhooks signatures (standardwebhooks.com): one implementation for the sender (the mock
agencies) and the receiver (the agency-callback endpoint)."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    mac = hmac.new(secret.encode(), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def sign_with_each(secrets: list[str], webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """One signature per secret, space-separated (as Standard Webhooks allows): during a secret rotation the
    receiver accepts the delivery with either its old or its new secret."""
    return " ".join(sign(secret, webhook_id, timestamp, body) for secret in secrets)
