"""The one-statement accept (app/services/accept_pg.py) decides exactly as ``accept.decide`` does.

Every combination of the key's latest standing submission (none; pending or done; appType 1/2/3; appStatus
1/2; the same content or other) and of the new submission's appType is set up in the database and accepted
through ``accept_pg.accept_one``; the SQL's verdict, and what it appended, must be the pure function's. Dead and
refused submissions do not stand: behind them the older standing one (or none) is what counts.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from app.models import RawMessage, Submission
from app.services import accept_pg
from app.services.accept import Previous, decide

pytestmark = pytest.mark.postgres_only

SAME, OTHER = "a" * 64, "b" * 64
NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def _raw() -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "sha256": "0" * 64,
        "content_type": "application/json",
        "body": b"{}",
        "sender": "enterprise:T",
        "received_at": NOW,
    }


def _row(number: str, raw_id: uuid.UUID, **values: Any) -> dict[str, Any]:
    return {
        "doc_type": "order",
        "owner_code": "PLATFORM01",
        "business_no": number,
        "order_no": number,
        "app_type": "1",
        "app_status": "2",
        "guid": str(uuid.uuid4()),
        "content_sha256": SAME,
        "payload": {"orderNo": number},
        "sender_code": "PLATFORM01",
        "actor": "enterprise:PLATFORM01",
        "raw_message_id": raw_id,
        "item_index": 0,
        "accepted_at": NOW,
        "state": "pending",
        "attempts": 0,
    } | values


async def _store(app: FastAPI, number: str, **values: Any) -> int:
    raw = _raw()
    async with app.state.engine.begin() as conn:
        await conn.execute(insert(RawMessage), [raw])
        return int(
            (await conn.execute(insert(Submission).returning(Submission.seq), [_row(number, raw["id"], **values)]))
            .scalars()
            .one()
        )


async def _count(app: FastAPI, number: str) -> int:
    async with app.state.engine.connect() as conn:
        statement = select(func.count()).select_from(Submission).where(Submission.business_no == number)
        return int((await conn.execute(statement)).scalar_one())


STATES = ("pending", "done")
APP_TYPES = ("1", "2", "3")
APP_STATUSES = ("1", "2")
DIGESTS = (SAME, OTHER)


async def test_the_statement_decides_as_decide_on_every_combination(app: FastAPI) -> None:
    cases = list(itertools.product(STATES, APP_TYPES, APP_STATUSES, DIGESTS, APP_TYPES))
    seen: dict[str, int] = {}
    for n, (state, before_type, before_status, digest, app_type) in enumerate(cases):
        number = f"COMBO{n:04d}"
        seq = await _store(app, number, state=state, app_type=before_type, app_status=before_status)
        before = Previous(seq, SAME, before_type, before_status, state, NOW)
        expected = decide(before, digest, app_type)
        raw = _raw()
        row = _row(number, raw["id"], content_sha256=digest, app_type=app_type)
        outcome = await accept_pg.accept_one(app.state.engine, row, raw)
        case = (state, before_type, before_status, digest[:1], app_type)
        assert outcome.verdict == expected, case
        assert await _count(app, number) == (2 if expected == "new" else 1), case
        if expected == "replay":
            assert (outcome.seq, outcome.accepted_at) == (seq, NOW), case
        elif expected == "new":
            assert outcome.seq is not None, case
            assert outcome.seq > seq, case
        seen[expected] = seen.get(expected, 0) + 1
    assert set(seen) == {"new", "replay", "conflict"}  # the grid reaches every verdict


async def test_a_key_never_seen_is_new(app: FastAPI) -> None:
    raw = _raw()
    outcome = await accept_pg.accept_one(app.state.engine, _row("FRESH", raw["id"]), raw)
    assert outcome.verdict == decide(None, SAME, "1") == "new"
    assert await _count(app, "FRESH") == 1


@pytest.mark.parametrize("fallen", [{"state": "dead"}, {"state": "done", "outcome": "rejected"}])
async def test_dead_and_refused_submissions_do_not_stand(app: FastAPI, fallen: dict[str, Any]) -> None:
    # The standing version is done and declared with other content; a later refused or dead one of the new
    # content must not make the new content a replay: it is a conflict with the standing version.
    await _store(app, "FALLEN", state="done", content_sha256=OTHER)
    await _store(app, "FALLEN", content_sha256=SAME, **fallen)
    raw = _raw()
    outcome = await accept_pg.accept_one(app.state.engine, _row("FALLEN", raw["id"]), raw)
    assert outcome.verdict == "conflict"
