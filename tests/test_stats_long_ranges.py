"""The two slow questions at 1 M purchases: an hourly series over all time is answered by day (from the daily
rollup), and a seller's figures over a long period read that seller's cells through its index (EXPLAIN)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, text

from app.services.stats import StatsFilter
from tests.conftest import ADMIN
from tests.factories import file_parties, post_triple, purchase


async def test_an_hourly_series_over_all_time_comes_by_day(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    for _ in range(5):
        await post_triple(client, parties, purchase(own_buyer=True))
    series = (await client.get("/api/v1/stats/timeseries?metric=purchases&bucket=hour", headers=ADMIN)).json()
    assert series["bucket"] == "day"
    assert [p["value"] for p in series["points"]] == [5]
    assert series["points"][0]["at"].endswith("T00:00:00Z")
    recent = await client.get(
        "/api/v1/stats/timeseries",
        params={"metric": "purchases", "bucket": "hour", "from": series["points"][0]["at"]},
        headers=ADMIN,
    )
    assert recent.json()["bucket"] == "hour"


async def test_a_sellers_long_period_reads_the_sellers_index(app: FastAPI) -> None:
    """The query ``_by_code`` sends for a seller filter, explained: SQLite searches the seller's index; on
    PostgreSQL (whose planner may scan a small table) the index is usable once scans are discouraged."""
    f = StatsFilter(ebc_code="3120960A02")
    model = f.table()
    query = (
        select(model.metric, model.code, func.sum(model.n))
        .where(model.metric.in_(("purchases", "matched")), *f.clauses(model))
        .group_by(model.metric, model.code)
    )
    async with app.state.sessionmaker() as session:
        dialect = session.get_bind().dialect
        compiled = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if dialect.name == "postgresql":
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {compiled}")))
        else:
            plan = "\n".join(str(row[-1]) for row in await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_stats_rollup_seller_metric_hour" in plan, plan
