"""Risk housekeeping (app/services/risk_housekeeping.py): R8 warnings raised into the officials' queue once per
enterprise and period, counter pruning, and the periodic loop the matcher runs — on the real database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.models import MatchRecord, RiskLink, RiskWarning
from app.services.risk import Observation, count_purchases
from app.services.risk_housekeeping import HousekeepingRun, housekeeping, r8_period
from tests.conftest import ADMIN, serving
from tests.factories import file_enterprise

BAD, FEW, EDGE = "3120960B01", "3120960B02", "3120960B03"  # sellers filed where the test reads their view


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(settings, risk_r8_min_records=10) as pair:
        yield pair


async def records(app: FastAPI, seller: str, total: int, rejected: int, days_ago: float = 1) -> None:
    """``total`` records of ``seller`` (one platform for all: it has no peers), ``rejected`` of them REJECTED."""
    at = utcnow() - timedelta(days=days_ago)
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all(
            MatchRecord(
                ebp_code="P-ONLY",
                order_no=f"R8-{uuid.uuid4().hex[:12]}",
                ebc_code=seller,
                status="REJECTED" if k < rejected else "DECLARED",
                missing=[],
                discrepancies=[],
                created_at=at,
            )
            for k in range(total)
        )


async def run(app: FastAPI, settings: Settings) -> HousekeepingRun:
    return await run_in_transaction(app.state.sessionmaker, lambda s: housekeeping(s, settings, utcnow()))


async def test_r8_raises_one_warning_per_enterprise_and_period(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = served
    settings: Settings = app.state.settings
    for seller, rejected in (("S1", 0), ("S2", 1), ("S3", 1), ("S4", 2)):
        await records(app, seller, 20, rejected)  # peers' median 5 %
    await records(app, BAD, 20, 3)  # 15 % > 2 × 5 %
    await records(app, EDGE, 20, 2)  # 10 %: exactly twice is not above
    await records(app, FEW, 9, 9)  # too few records to have a rate (below SW_RISK_R8_MIN_RECORDS of 10)
    await records(app, "OLD", 20, 20, days_ago=8)  # outside the 7 days
    first = await run(app, settings)
    assert (first.ran, first.raised) == (True, 1)
    again = await run(app, settings)
    assert (again.ran, again.raised) == (True, 0)  # the period's warning exists: not raised twice

    queue = await client.get("/api/v1/risk/warnings", params={"rule": "R8"}, headers=ADMIN)
    assert queue.status_code == 200, queue.text
    [warning] = queue.json()["items"]
    assert (warning["ebcCode"], warning["ebpCode"], warning["logisticsCode"]) == (BAD, None, None)
    assert warning["recordId"] is None
    assert warning["detail"]["value"] == "0.1500"
    assert warning["detail"]["role"] == "seller"
    assert warning["detail"]["period"] == r8_period(utcnow())
    mine = await client.get("/api/v1/risk/warnings", params={"enterpriseCode": BAD}, headers=ADMIN)
    assert [w["id"] for w in mine.json()["items"]] == [warning["id"]]

    # The enterprise's risk view judges R8 by the same rule: BAD is out, FEW has too few records.
    for code, outlier in ((BAD, True), (FEW, False), (EDGE, False)):
        await file_enterprise(client, code, f"卖家 {code}", ["seller"])
        view = await client.get(f"/api/v1/enterprises/{code}/risk", headers=ADMIN)
        assert view.status_code == 200, view.text
        assert view.json()["r8RejectionOutlier"] is outlier, code
    # Handled (dismissed), it stays the period's one warning: the next run does not raise it again.
    dismissed = await client.post(
        f"/api/v1/risk/warnings/{warning['id']}/dismiss", json={"note": "退单系海关系统故障"}, headers=ADMIN
    )
    assert dismissed.status_code == 200, dismissed.text
    assert (await run(app, settings)).raised == 0


async def test_r8_is_not_raised_with_risk_off(settings: Settings) -> None:
    async with serving(settings, risk_r8_min_records=10, risk_enabled=False) as (app, _):
        for seller in ("S1", "S2", "S3"):
            await records(app, seller, 20, 1)
        await records(app, BAD, 20, 10)
        assert (await run(app, app.state.settings)).raised == 0


@pytest.mark.postgres_only
async def test_concurrent_runs_raise_the_warning_once(served: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, _ = served
    for seller in ("S1", "S2", "S3"):
        await records(app, seller, 20, 1)
    await records(app, BAD, 20, 10)
    runs = await asyncio.gather(*(run(app, app.state.settings) for _ in range(6)))
    assert sum(r.raised for r in runs) == 1
    assert any(r.ran for r in runs)
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(RiskWarning)) == 1


async def test_the_matcher_process_runs_the_housekeeping_periodically(settings: Settings) -> None:
    async with serving(settings, risk_housekeeping_interval_s=0.05, risk_r8_min_records=10) as (app, client):
        old = utcnow() - timedelta(days=40)
        async with app.state.sessionmaker() as session, session.begin():
            await count_purchases(session, [Observation("b-old", "a-old", "p-old", "P1")], old, window_days=30)
        for seller in ("S1", "S2", "S3"):
            await records(app, seller, 20, 1)
        await records(app, BAD, 20, 10)

        async def done() -> bool:
            async with app.state.sessionmaker() as session:
                links = await session.scalar(select(func.count()).select_from(RiskLink))
            queue = await client.get("/api/v1/risk/warnings", params={"rule": "R8"}, headers=ADMIN)
            return links == 0 and len(queue.json()["items"]) == 1

        deadline = time.monotonic() + 30
        while not await done():
            assert time.monotonic() < deadline, "the housekeeping never ran"
            await asyncio.sleep(0.05)
        # Stopped before the test's wipe, which a run in progress would deadlock with.
        app.state.risk_housekeeper.stop()
        await asyncio.wait_for(app.state.risk_housekeeping_task, timeout=10)


async def test_no_interval_no_loop(settings: Settings) -> None:
    async with serving(settings, risk_housekeeping_interval_s=0) as (app, _):
        await asyncio.wait_for(app.state.risk_housekeeper.run(), timeout=5)  # returns at once
