"""Signed agency callbacks (Standard Webhooks), beyond tests/test_dispatch.py's valid / tampered / stale / replay /
rotation cases: every single-byte change of a signed body, timestamps just inside and just outside the 300 s
window on both sides, the same webhook-id replayed concurrently and with another body, several signatures in one
header, unknown signature versions and malformed headers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from app.errors import DomainError
from app.services.callbacks import TOLERANCE_S, verify
from app.webhooks import sign
from tests.conftest import ADMIN
from tests.factories import file_parties, post_triple, purchase

SECRET = "single-window-dev-callback-secret"  # the test settings' (development default) secret
URL = "/api/v1/agency-callbacks/customs"


def signed(body: bytes, secret: str = SECRET, webhook_id: str | None = None, at: int | None = None) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()) if at is None else at)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def _body(record_id: str, status: str = "500") -> bytes:
    receipt = {"returnStatus": status, "returnInfo": "查验"}
    return json.dumps({"agency": "customs", "recordId": record_id, "receipts": [receipt]}).encode()


async def _callbacks_on(client: httpx.AsyncClient, record_id: str) -> int:
    record = (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
    return sum(r["source"] == "callback" for r in record["receipts"])


def _outcome(response: httpx.Response) -> tuple[int, str]:
    body: dict[str, Any] = response.json()
    return response.status_code, body.get("code") or body.get("status", "")


async def run_signature_checks(client: httpx.AsyncClient) -> int:
    """Every check, through the HTTP app; the number of checks passed (each one asserts)."""
    parties = await file_parties(client)
    record_id = (await post_triple(client, parties, purchase()))[-1].json()["recordId"]
    body = _body(record_id)
    checks = 0

    # Every one-byte change of the body, of the id and of the timestamp, against the original signature.
    headers = signed(body)
    for position in range(len(body)):
        changed = bytearray(body)
        changed[position] ^= 0x01
        response = await client.post(URL, content=bytes(changed), headers=headers)
        assert _outcome(response) == (401, "SIGNATURE_INVALID"), (position, response.text)
        checks += 1
    for name in ("webhook-id", "webhook-timestamp"):
        value = headers[name]
        other = value[:-1] + ("0" if value[-1] != "0" else "1")
        response = await client.post(URL, content=body, headers=headers | {name: other})
        assert _outcome(response) == (401, "SIGNATURE_INVALID"), (name, response.text)
        checks += 1
    assert await _callbacks_on(client, record_id) == 0

    # The 300 s window, on both sides. A timestamp ahead of the clock comes nearer while the request travels (and
    # ``now`` is truncated): just outside on that side needs the margin that just inside has (it once read 301 s
    # ahead as 299.x by the time the server checked it).
    now = int(time.time())
    for offset in (-TOLERANCE_S - 1, TOLERANCE_S + 5, -100_000, 100_000):
        response = await client.post(URL, content=body, headers=signed(body, at=now + offset))
        assert _outcome(response) == (401, "SIGNATURE_STALE"), (offset, response.text)
        checks += 1
    for offset in (-TOLERANCE_S + 5, TOLERANCE_S - 5):
        response = await client.post(URL, content=_body(record_id, "500"), headers=signed(body, at=now + offset))
        assert _outcome(response) == (200, "accepted"), (offset, response.text)
        checks += 1
    assert await _callbacks_on(client, record_id) == 2

    # One id, sent ten times at once: processed once.
    headers = signed(body)
    answers = await asyncio.gather(*(client.post(URL, content=body, headers=headers) for _ in range(10)))
    outcomes = sorted(_outcome(r) for r in answers)
    assert outcomes == [(200, "accepted")] + [(200, "duplicate")] * 9, outcomes
    assert await _callbacks_on(client, record_id) == 3
    checks += 1

    # The same id again with another (correctly signed) body: still the duplicate, nothing applied.
    other_body = _body(record_id, "800")
    response = await client.post(URL, content=other_body, headers=signed(other_body, webhook_id=headers["webhook-id"]))
    assert _outcome(response) == (200, "duplicate")
    record = (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
    assert record["status"] == "INSPECTION"
    checks += 1

    # Several signatures in one header (a sender rotating its secret): one valid one is enough; none is not.
    headers = signed(body)
    wrong = sign("an-old-secret", headers["webhook-id"], headers["webhook-timestamp"], body)
    for value, outcome in (
        (f"{wrong} {headers['webhook-signature']}", (200, "accepted")),
        (f"{wrong} {wrong}", (401, "SIGNATURE_INVALID")),
        (headers["webhook-signature"].replace("v1,", "v2,"), (401, "SIGNATURE_INVALID")),
        (headers["webhook-signature"].removeprefix("v1,"), (401, "SIGNATURE_INVALID")),
    ):
        fresh = signed(body) | {"webhook-signature": value}
        fresh["webhook-id"] = headers["webhook-id"] if outcome[0] == 200 else fresh["webhook-id"]
        response = await client.post(URL, content=body, headers=fresh)
        assert _outcome(response) == outcome, (value, response.text)
        checks += 1

    # Missing or malformed headers.
    good = signed(body)
    for name, value in (
        ("webhook-id", None),
        ("webhook-timestamp", None),
        ("webhook-signature", None),
        ("webhook-timestamp", "yesterday"),
        ("webhook-timestamp", "1e9"),
        ("webhook-id", "x" * 101),
    ):
        headers = {k: v for k, v in good.items() if k != name}
        if value is not None:
            headers[name] = value
        response = await client.post(URL, content=body, headers=headers)
        assert _outcome(response) == (401, "SIGNATURE_INVALID"), (name, value, response.text)
        checks += 1
    return checks


async def test_signed_callbacks_are_refused_unless_intact_fresh_and_new(client: httpx.AsyncClient) -> None:
    assert await run_signature_checks(client) > 100


def test_rotation_accepts_every_listed_secret_and_no_other() -> None:
    body = b'{"recordId":"x"}'
    for secret in ("new-secret", "old-secret"):
        assert verify(["new-secret", "old-secret"], signed(body, secret, webhook_id="msg_1"), body) == "msg_1"
    with pytest.raises(DomainError) as refused:
        verify(["new-secret", "old-secret"], signed(body, "retired-secret"), body)
    assert refused.value.code == "SIGNATURE_INVALID"
    # The window is measured from the receiver's clock, both ways.
    headers = signed(body, "new-secret", at=1_000_000)
    assert verify(["new-secret"], headers, body, now=1_000_000 + TOLERANCE_S) == headers["webhook-id"]
    for now in (1_000_000 + TOLERANCE_S + 1, 1_000_000 - TOLERANCE_S - 1):
        with pytest.raises(DomainError) as stale:
            verify(["new-secret"], headers, body, now=now)
        assert stale.value.code == "SIGNATURE_STALE"
