"""Forged, replayed and stale agency callbacks are refused for every agency, and change nothing.

Each agency (customs, inspection, tax, FX) has its own callback secret (SW_<AGENCY>_CALLBACK_SECRETS). For a
declared purchase per agency, callbacks carrying a customs-style release ("800 放行") are sent to that agency's
route: forged (signed with the published development secret, with another agency's secret, with a guessed one,
unsigned, or a genuine signature over a changed body or id), replayed (a genuine callback sent again, at once
and concurrently, and its id with another body) and stale (signed with the right secret, more than 300 s off
either way, and a genuine callback captured and sent once its window had passed). Every one is refused — 401
``SIGNATURE_INVALID`` / ``SIGNATURE_STALE``, or the ``duplicate`` of the one genuine callback — and the record
keeps its status with exactly the one genuine callback receipt.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.config import CALLBACK_AGENCIES, DEVELOPMENT_CALLBACK_SECRET, Settings
from app.services.callbacks import TOLERANCE_S
from app.webhooks import sign
from tests.conftest import ADMIN, serving, soak_level
from tests.factories import file_parties, post_triple, purchase
from tests.figures import record_figure

pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]

ROUNDS = {"quick": 1, "full": 5}  # purchases per agency
CONCURRENT_REPLAYS = 10


def _headers(secret: str | None, body: bytes, webhook_id: str | None = None, at: int | None = None) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()) if at is None else at)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "content-type": "application/json"}
    if secret is not None:
        headers["webhook-signature"] = sign(secret, webhook_id, timestamp, body)
    return headers


def _body(agency: str, record_id: str, status: str, info: str) -> bytes:
    receipt = {"returnStatus": status, "returnInfo": info, "returnTime": "20261123102000123"}
    return json.dumps({"agency": agency, "recordId": record_id, "receipts": [receipt]}, ensure_ascii=False).encode()


def _outcome(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return f"{response.status_code} {body.get('code') or body.get('status')}"


async def _record(http: httpx.AsyncClient, record_id: str) -> tuple[str, int]:
    record = (await http.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
    return record["status"], sum(r["source"] == "callback" for r in record["receipts"])


async def _attacks(http: httpx.AsyncClient, agency: str, record_id: str, own: dict[str, str]) -> Counter[str]:
    """Every attack on one agency's route for one record; the outcome of each, by kind."""
    url = f"/api/v1/agency-callbacks/{agency}"
    outcomes: Counter[str] = Counter()
    release = _body(agency, record_id, "800", "放行")
    status_before, callbacks_before = await _record(http, record_id)
    assert callbacks_before == 0

    others = [secret for name, secret in own.items() if name != agency]
    forged = [
        ("published development secret", _headers(DEVELOPMENT_CALLBACK_SECRET, release)),
        ("guessed secret", _headers(secrets.token_urlsafe(32), release)),
        ("unsigned", _headers(None, release)),
        *((f"another agency's secret #{i}", _headers(secret, release)) for i, secret in enumerate(others)),
    ]
    for what, headers in forged:
        answer = await http.post(url, content=release, headers=headers)
        assert _outcome(answer) == "401 SIGNATURE_INVALID", (agency, what, answer.text)
        outcomes["forged"] += 1
    # A genuine signature over something else: another body, another id.
    genuine = _body(agency, record_id, "120", "新增申报成功")
    headers = _headers(own[agency], genuine)
    for content, changed in ((release, headers), (genuine, headers | {"webhook-id": f"msg_{uuid.uuid4().hex}"})):
        answer = await http.post(url, content=content, headers=changed)
        assert _outcome(answer) == "401 SIGNATURE_INVALID", (agency, answer.text)
        outcomes["forged"] += 1

    now = int(time.time())
    for offset in (-TOLERANCE_S - 1, TOLERANCE_S + 1, -86_400):
        answer = await http.post(url, content=release, headers=_headers(own[agency], release, at=now + offset))
        assert _outcome(answer) == "401 SIGNATURE_STALE", (agency, offset, answer.text)
        outcomes["stale"] += 1
    assert await _record(http, record_id) == (status_before, 0)

    # The one genuine callback, then replays of it.
    answer = await http.post(url, content=genuine, headers=headers)
    assert _outcome(answer) == "200 accepted", (agency, answer.text)
    status_after, callbacks = await _record(http, record_id)
    assert callbacks == 1
    answer = await http.post(url, content=genuine, headers=headers)
    assert _outcome(answer) == "200 duplicate", (agency, answer.text)
    outcomes["replayed"] += 1
    replays = await asyncio.gather(
        *(http.post(url, content=genuine, headers=headers) for _ in range(CONCURRENT_REPLAYS))
    )
    assert [_outcome(r) for r in replays] == ["200 duplicate"] * CONCURRENT_REPLAYS, agency
    outcomes["replayed"] += CONCURRENT_REPLAYS
    answer = await http.post(url, content=release, headers=_headers(own[agency], release, headers["webhook-id"]))
    assert _outcome(answer) == "200 duplicate", (agency, answer.text)  # its id, another (signed) body
    outcomes["replayed"] += 1
    # Captured and sent again once its window has passed: its own timestamp, its own signature.
    captured_at = int(headers["webhook-timestamp"]) - TOLERANCE_S - 1
    captured = _headers(own[agency], genuine, f"msg_{uuid.uuid4().hex}", at=captured_at)
    answer = await http.post(url, content=genuine, headers=captured)
    assert _outcome(answer) == "401 SIGNATURE_STALE", (agency, answer.text)
    outcomes["stale"] += 1

    assert await _record(http, record_id) == (status_after, 1), agency
    assert status_after != "CLEARED"
    return outcomes


async def test_forged_replayed_and_stale_callbacks_are_refused_for_every_agency(settings: Settings) -> None:
    own = {agency: secrets.token_urlsafe(32) for agency in CALLBACK_AGENCIES}
    configured = {f"{agency}_callback_secrets": SecretStr(secret) for agency, secret in own.items()}
    totals: dict[str, Counter[str]] = {}
    async with serving(settings, **configured) as (_, http):
        parties = await file_parties(http)
        for agency in CALLBACK_AGENCIES:
            totals[agency] = Counter()
            for _ in range(ROUNDS[soak_level() or "quick"]):
                answers = await post_triple(http, parties, purchase(own_buyer=True))
                record_id = answers[-1].json()["recordId"]
                assert (await _record(http, record_id))[0] == "DECLARED", answers[-1].text
                totals[agency] += await _attacks(http, agency, record_id, own)

    kinds = ("forged", "replayed", "stale")
    for agency, counts in totals.items():
        assert all(counts[kind] > 0 for kind in kinds), (agency, counts)
    per_agency = "; ".join(f"{a} " + "/".join(str(totals[a][k]) for k in kinds) for a in CALLBACK_AGENCIES)
    print(f"\ncallback attacks refused (forged/replayed/stale): {per_agency}")
    record_figure(
        "Forged, replayed and stale agency callbacks, each agency with its own secret (forged: the published "
        "development secret, another agency's, a guessed one, unsigned, a signature over another body or id)",
        f"refused, per agency forged/replayed/stale: {per_agency}; applied 0 (one genuine callback each, once)",
        "all refused, nothing applied",
    )
