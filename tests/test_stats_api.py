"""The statistics API (JSON and CSV) over the rollups, suppression of small cells, who may read it, and the
streamed CSV export of a record search."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.test_dispatch import drain

CSV = {**ADMIN, "Accept": "text/csv"}


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Parties]]:
    async with serving(
        settings,
        mock_inspection_rate_general=0.0,
        mock_inspection_delay_ms=10,
        dispatch_backoff_base_s=0.001,
        dispatch_backoff_cap_s=0.01,
        page_size_max=4,  # the export reads pages of 4: several pages for the records below
    ) as (app, client):
        yield app, client, await file_parties(client)


async def purchases(app: FastAPI, client: httpx.AsyncClient, parties: Parties, cleared: int, mismatched: int) -> None:
    for _ in range(cleared):
        await post_triple(client, parties, purchase(own_buyer=True))
    for _ in range(mismatched):
        await post_triple(client, parties, purchase(own_buyer=True, payment={"amountPaid": "240.00"}))
    await drain(app)


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))


async def test_summary_counts_purchases_documents_match_rate_and_tax(
    world: tuple[FastAPI, httpx.AsyncClient, Parties],
) -> None:
    app, client, parties = world
    await purchases(app, client, parties, cleared=5, mismatched=5)
    response = await client.get("/api/v1/stats/summary", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["purchases"] == {"CLEARED": 5, "MISMATCHED": 5}
    assert (body["purchasesTotal"], body["matched"], body["mismatched"], body["matchRate"]) == (10, 5, 5, 0.5)
    assert body["documents"] == {"order:stored": 10, "payment:stored": 10, "waybill:stored": 10}
    assert Decimal(body["taxCollected"]) == 5 * Decimal("46.12")
    assert body["rejected"] == 0

    by_figure = {
        row["figure"]: row["value"] for row in read_csv(await client.get("/api/v1/stats/summary", headers=CSV))
    }
    assert by_figure["purchases.CLEARED"] == "5"
    assert Decimal(by_figure["taxCollected"]) == Decimal("230.60")

    reasons = (await client.get("/api/v1/stats/mismatch-reasons?top=3", headers=ADMIN)).json()
    assert [(i["code"], i["count"]) for i in reasons["items"]] == [("PAYMENT_AMOUNT_MISMATCH", 5)]
    assert reasons["items"][0]["zh"]

    hourly = (await client.get("/api/v1/stats/timeseries?metric=purchases&bucket=hour", headers=ADMIN)).json()
    assert [p["value"] for p in hourly["points"]] == [10], hourly
    daily = read_csv(await client.get("/api/v1/stats/timeseries?metric=tax&bucket=day", headers=CSV))
    assert [Decimal(row["tax"]) for row in daily] == [Decimal("230.60")]
    assert datetime.fromisoformat(daily[0]["at"]).hour == 0

    times = {
        m["measure"]: m for m in (await client.get("/api/v1/stats/clearance-times", headers=ADMIN)).json()["measures"]
    }
    for measure in ("t_match", "t_customs", "t_e2e"):
        assert times[measure]["count"] == 5
        counts = [b["count"] for b in times[measure]["histogram"]]
        assert len(counts) == 24
        # Five durations in one bucket, or spread over buckets whose counts (1 to 4) are suppressed.
        assert sum(c for c in counts if c) in (0, 5)
        assert counts.count(0) < 24
        assert times[measure]["p50Seconds"] <= times[measure]["p90Seconds"] <= times[measure]["p99Seconds"]
    assert times["t_match"]["open"] == 5  # the mismatched ones are still waiting to match
    assert times["t_customs"]["open"] == 0

    backlog = (await client.get("/api/v1/stats/backlog", headers=ADMIN)).json()
    assert {s["stage"]: s["backlog"] for s in backlog["stages"]} == {"match": 0, "dispatch": 0, "notify": 0}
    open_ = {p["status"]: p["count"] for p in backlog["openPurchases"]}
    assert open_["MISMATCHED"] == 5
    assert open_["DECLARED"] == 0


async def test_small_cells_are_suppressed(world: tuple[FastAPI, httpx.AsyncClient, Parties]) -> None:
    app, client, parties = world
    await purchases(app, client, parties, cleared=5, mismatched=2)
    body = (await client.get("/api/v1/stats/summary", headers=ADMIN)).json()
    assert body["purchases"] == {"CLEARED": 5, "MISMATCHED": None}
    assert (body["mismatched"], body["matchRate"]) == (None, None)
    reasons = (await client.get("/api/v1/stats/mismatch-reasons", headers=ADMIN)).json()
    assert reasons["items"] == [
        {
            "code": "PAYMENT_AMOUNT_MISMATCH",
            "source": "record",
            "zh": reasons["items"][0]["zh"],
            "en": reasons["items"][0]["en"],
            "count": None,
        }
    ]
    rows = read_csv(await client.get("/api/v1/stats/mismatch-reasons", headers=CSV))
    assert rows[0]["count"] == ""


async def test_filters_by_party_and_period(world: tuple[FastAPI, httpx.AsyncClient, Parties]) -> None:
    app, client, parties = world
    await purchases(app, client, parties, cleared=5, mismatched=0)
    mine = (await client.get("/api/v1/stats/summary?ebcCode=3120960A02", headers=ADMIN)).json()
    assert mine["purchasesTotal"] == 5
    other = (await client.get("/api/v1/stats/summary?ebpCode=9999999999", headers=ADMIN)).json()
    assert other["purchasesTotal"] == 0
    # Whole days are read from the daily rollup, other periods from the hourly one: the same purchases.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for start in (today, today - timedelta(days=3), datetime.now(UTC) - timedelta(hours=1)):
        since = await client.get("/api/v1/stats/summary", params={"from": start.isoformat()}, headers=ADMIN)
        assert since.json()["purchasesTotal"] == 5, start
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    future = await client.get("/api/v1/stats/summary", params={"from": later}, headers=ADMIN)
    assert future.json()["purchasesTotal"] == 0
    naive = await client.get("/api/v1/stats/summary", params={"from": "2026-01-01T00:00:00"}, headers=ADMIN)
    assert naive.status_code == 422
    unknown = await client.get("/api/v1/stats/timeseries?metric=nonsense", headers=ADMIN)
    assert unknown.status_code == 422


async def test_only_officials_and_admins_read_statistics(world: tuple[FastAPI, httpx.AsyncClient, Parties]) -> None:
    _, client, parties = world
    for path in ("summary", "timeseries", "mismatch-reasons", "rejections", "clearance-times", "backlog"):
        assert (await client.get(f"/api/v1/stats/{path}", headers=parties.platform)).status_code == 403
        assert (await client.get(f"/api/v1/stats/{path}")).status_code == 401
    official = await client.post("/api/v1/officials", json={"label": "统计员"}, headers=ADMIN)
    assert official.status_code == 201, official.text
    as_official = {"X-API-Key": official.json()["key"]}
    assert (await client.get("/api/v1/stats/summary", headers=as_official)).status_code == 200


async def test_record_search_exports_as_streamed_csv(world: tuple[FastAPI, httpx.AsyncClient, Parties]) -> None:
    app, client, parties = world
    await purchases(app, client, parties, cleared=5, mismatched=5)
    everything = read_csv(await client.get("/api/v1/records/export", headers=ADMIN))
    assert len(everything) == 10  # three pages of 4
    assert len({row["recordId"] for row in everything}) == 10
    mismatched = read_csv(await client.get("/api/v1/records?status=MISMATCHED", headers=CSV))
    assert [row["discrepancies"] for row in mismatched] == ["PAYMENT_AMOUNT_MISMATCH"] * 5
    # A carrier exports what it may read: its purchases, the buyer's ID masked.
    carrier = read_csv(await client.get("/api/v1/records/export", headers=parties.logistics))
    assert len(carrier) == 10
    assert all("*" in row["buyerIdNumber"] for row in carrier)
    assert read_csv(await client.get("/api/v1/records/export?ebpCode=0000000000", headers=ADMIN)) == []
