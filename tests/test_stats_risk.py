"""Inspection rate by credit level and warnings by rule: counted by the declare stage in its own transaction,
equal to what ``sw stats rebuild`` recomputes, and served by the stats API as JSON and CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.services.rollups import rebuild, recompute, stored_cells
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase
from tests.test_stats_rollups import totals

SELLER = "3120960A02"
DISHONEST = {"level": "dishonest", "basis": "行政处罚 2026-09 走私违规", "effectiveDate": "2026-10-01"}


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # R3 at two buyers per telephone; regular enterprises never sampled, dishonest ones always.
    async with serving(
        settings,
        risk_ids_per_phone=2,
        supervision_rate_regular=0.0,
        supervision_rate_dishonest=1.0,
        mock_inspection_delay_ms=10,
    ) as pair:
        yield pair


async def test_decisions_and_warnings_are_counted_and_rebuilt(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    shared = {"consigneeTelephone": "13912345678"}
    for _ in range(6):  # regular seller: the 2nd to 6th share a telephone with another buyer (R3)
        await post_triple(client, parties, purchase(own_buyer=True, order=shared, waybill=shared))
    credit = await client.put(f"/api/v1/enterprises/{SELLER}/credit", json=DISHONEST, headers=ADMIN)
    assert credit.status_code == 200, credit.text
    for _ in range(5):  # a dishonest seller: all inspected by its profile
        await post_triple(client, parties, purchase(own_buyer=True))

    async with app.state.sessionmaker() as session:
        kept = await stored_cells(session)
        assert kept == await recompute(session)
    assert {code: a.n for code, a in totals(kept, "warning").items()} == {"R3": 5}
    decisions = {code: a.n for code, a in totals(kept, "decision").items()}
    assert decisions == {"regular:release": 6, "dishonest:inspect": 5}
    async with app.state.sessionmaker() as session, session.begin():
        await rebuild(session)
    async with app.state.sessionmaker() as session:
        assert await stored_cells(session) == kept

    found = (await client.get("/api/v1/stats/inspections", headers=ADMIN)).json()
    levels = {x["level"]: x for x in found["levels"]}
    assert (levels["regular"]["declarations"], levels["regular"]["released"]) == (6, 6)
    assert levels["regular"]["inspectionRate"] == 0.0  # the tests turn off inspecting on a warning
    assert (levels["dishonest"]["declarations"], levels["dishonest"]["inspectionRate"]) == (5, 1.0)
    assert levels["certified"]["declarations"] == 0
    assert (found["declarations"], found["inspectionRate"]) == (11, pytest.approx(5 / 11))
    by_rule = (await client.get("/api/v1/stats/warnings", headers=ADMIN)).json()
    assert [(i["code"], i["count"], i["zh"]) for i in by_rule["items"]] == [("R3", 5, "同一收货电话关联的订购人过多")]
    csv = await client.get("/api/v1/stats/inspections", headers=ADMIN | {"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert "dishonest,失信企业,5,5,0,0,1.0" in csv.text
    warnings_csv = await client.get("/api/v1/stats/warnings", headers=ADMIN | {"Accept": "text/csv"})
    assert ",R3,5," in warnings_csv.text
    elsewhere = await client.get("/api/v1/stats/warnings", params={"ebpCode": "0000000000"}, headers=ADMIN)
    assert elsewhere.json()["items"] == []
    assert (await client.get("/api/v1/stats/inspections", headers=parties.seller)).status_code == 403
