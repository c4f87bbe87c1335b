"""``sw stats rebuild`` in SQL equals the pure definition (``contribution`` summed in Python by ``recompute``)
on both backends, over records of every status, clock and reason — and over the awkward ones: a reason code
twice, JSON elements that are not objects, a rejection known by ``code`` alone, spans exactly on a bucket's
edge, tax with five decimals."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert

from app.models import MatchRecord, StatsRollupDaily
from app.rules.rollups import daily, duration_bucket
from app.services.rollups import rebuild, recompute, stored_cells
from bench.stats import synthetic_record

EDGE = datetime(2026, 12, 7, 10, 59, 59, 999999, tzinfo=UTC)


def awkward(n: int) -> dict[str, Any]:
    """A cleared purchase whose spans fall exactly on (and a microsecond under) bucket edges, with odd JSON."""
    start = EDGE - timedelta(hours=n)
    edge = timedelta(seconds=2 ** (n % 23)) - timedelta(microseconds=n % 2)
    return {
        "id": uuid.uuid4(),
        "ebp_code": "P000000099",
        "order_no": f"AW{n:012d}",
        "ebc_code": None if n % 3 == 0 else "S000000099",
        "buyer_id_number": f"3301061990{n:08d}",
        "status": "CLEARED",
        "missing": [],
        "discrepancies": [],
        "matched_at": start + edge,
        "agencies": {"customs": {"state": "released"}, "fx": "not an object", "tax": {"state": ""}},
        "rejection": None,
        "created_at": start,
        "updated_at": start + 2 * edge,
        "documents_first_at": start - timedelta(microseconds=1),
        "documents_last_at": start,
        "customs_accepted_at": start + edge,
        "settled_at": start + 2 * edge,
        "tax_total": Decimal("12.34567"),
        "trade_mode": "1210",
        "port_code": None,
    }


def odd(n: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    row = synthetic_record(n, rng, now)
    if row["status"] == "MISMATCHED":
        code = row["discrepancies"][0]["code"]
        row["discrepancies"] = [{"code": code}, {"code": code}, "text", {"field": "x"}, {"code": "PAYER_NOT_BUYER"}]
    if row["status"] == "REJECTED" and n % 2:
        row["rejection"] = {"agency": "customs", "code": "100"}
    return row


async def test_rebuild_in_sql_equals_the_pure_definition(app: FastAPI) -> None:
    assert duration_bucket(2.0) == 2  # the edge: [2, 4) s
    rng, now = random.Random(13), datetime(2026, 12, 7, 12, 30, tzinfo=UTC)
    rows = [odd(n, rng, now) for n in range(600)] + [awkward(n) for n in range(46)]
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(insert(MatchRecord), rows)
    async with app.state.sessionmaker() as session:
        expected = await recompute(session)
    assert {key.metric for key in expected} >= {"purchases", "mismatch", "rejection", "agency", "t_e2e", "tax"}
    async with app.state.sessionmaker() as session, session.begin():
        assert await rebuild(session) == len(expected)
    async with app.state.sessionmaker() as session:
        assert await stored_cells(session) == expected
        assert await stored_cells(session, StatsRollupDaily) == daily(expected)
