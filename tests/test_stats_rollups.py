"""The statistics rollups: kept by the pipeline in the transactions that change the records, and equal to what
``sw stats rebuild`` recomputes from the records after a mixed workload."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select

from app.config import Settings
from app.db import run_in_transaction
from app.matcher import Matcher
from app.models import MatchRecord, StatsRollup, StatsRollupDaily
from app.rules.rollups import Amounts, Cells, daily, from_e5
from app.services.rollups import rebuild, recompute, stored_cells
from tests.conftest import serving
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.test_dispatch import drain


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(
        settings,
        mock_inspection_rate_general=0.0,
        # No credit sampling either: a sampled purchase is held, and the agency counts below expect none.
        supervision_rate_regular=0.0,
        mock_inspection_delay_ms=10,
        dispatch_backoff_base_s=0.001,
        dispatch_backoff_cap_s=0.01,
    ) as pair:
        yield pair


def priced(amount: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A consistent purchase of one line at ``amount`` (over 5000 it breaches the single limit)."""
    line = {"price": amount, "totalPrice": amount, "qty": "1"}
    order, payment, waybill = purchase(
        own_buyer=True,
        order={"goodsValue": amount, "taxTotal": "0", "acturalPaid": amount},
        payment={"amountPaid": amount},
    )
    order["orderList"] = [copy.deepcopy(order["orderList"][0]) | line]
    payment["payerIdNumber"] = order["buyerIdNumber"]
    return order, payment, waybill


async def mixed_workload(app: FastAPI, client: httpx.AsyncClient, parties: Parties) -> None:
    """Cleared, mismatched (then one of them corrected and cleared), rejected by the single limit, a document
    refused, one purchase still waiting for its waybill."""
    for _ in range(3):
        await post_triple(client, parties, purchase(own_buyer=True))
    for _ in range(2):
        await post_triple(client, parties, purchase(own_buyer=True, payment={"amountPaid": "240.00"}))
    order, payment, waybill = purchase(own_buyer=True, payment={"amountPaid": "1.00"})
    await post_triple(client, parties, (order, payment, waybill))
    fixed = await client.post(
        "/api/v1/payments", json=payment | {"appType": "2", "amountPaid": order["acturalPaid"]}, headers=parties.payment
    )
    assert fixed.json()["recordStatus"] == "DECLARED", fixed.text
    rejected = (await post_triple(client, parties, priced("5000.01")))[-1].json()
    assert rejected["recordStatus"] == "REJECTED", rejected
    never_sent = purchase(own_buyer=True)[1] | {"appType": "2"}
    refused = await client.post("/api/v1/payments", json=never_sent, headers=parties.payment)
    assert refused.json()["code"] == "DOCUMENT_NOT_FOUND", refused.text
    waiting = purchase(own_buyer=True)
    await client.post("/api/v1/orders", json=waiting[0], headers=parties.platform)
    await drain(app)


def totals(cells: Cells, metric: str) -> dict[str, Amounts]:
    found: dict[str, Amounts] = {}
    for key, amounts in cells.items():
        if key.metric == metric:
            found[key.code] = found.get(key.code, Amounts(0)) + amounts
    return found


async def test_rollups_kept_by_the_pipeline_equal_the_rebuild(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    await mixed_workload(app, client, parties)
    async with app.state.sessionmaker() as session:
        kept = await stored_cells(session)
        assert kept == await recompute(session)
        kept_daily = await stored_cells(session, StatsRollupDaily)
        assert kept_daily == daily(kept)
        records = list(await session.scalars(select(MatchRecord)))

    purchases = {code: a.n for code, a in totals(kept, "purchases").items() if a.n}
    assert purchases == {"CLEARED": 4, "MISMATCHED": 2, "REJECTED": 1, "AWAITING_DOCUMENTS": 1}
    assert totals(kept, "matched")[""].n == 5
    assert {code: a.n for code, a in totals(kept, "mismatch").items()} == {"PAYMENT_AMOUNT_MISMATCH": 2}
    assert {code: a.n for code, a in totals(kept, "rejection").items()} == {"-621005": 1}
    documents = {code: a.n for code, a in totals(kept, "documents").items()}
    assert documents == {"order:stored": 8, "payment:stored": 8, "payment:rejected": 1, "waybill:stored": 7}
    assert {code: a.n for code, a in totals(kept, "document_rejection").items()} == {"DOCUMENT_NOT_FOUND": 1}
    assert {code: a.n for code, a in totals(kept, "agency").items()} == {
        "customs:released": 4,
        **{f"{agency}:accepted": 4 for agency in ("fx", "inspection", "tax")},
    }
    for measure in ("t_match", "t_customs", "t_e2e"):
        assert sum(a.n for a in totals(kept, measure).values()) == 4, measure
    cleared_tax = sum((r.tax_total or Decimal(0) for r in records if r.status == "CLEARED"), Decimal(0))
    assert cleared_tax > 0
    assert from_e5(totals(kept, "purchases")["CLEARED"].amount_e5) == cleared_tax.quantize(Decimal("0.01"))
    assert totals(kept, "tax")[""] == Amounts(4, totals(kept, "purchases")["CLEARED"].amount_e5)

    async with app.state.sessionmaker() as session, session.begin():
        await rebuild(session)
    async with app.state.sessionmaker() as session:
        assert await stored_cells(session) == kept
        assert await stored_cells(session, StatsRollupDaily) == kept_daily


async def test_rebuild_restores_rollups_that_were_lost(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    for _ in range(2):
        await post_triple(client, parties, purchase(own_buyer=True))
    await drain(app)
    async with app.state.sessionmaker() as session:
        kept = await stored_cells(session)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(delete(StatsRollup))
        await session.execute(delete(StatsRollupDaily))
    async with app.state.sessionmaker() as session:
        assert await stored_cells(session) == {}
    async with app.state.sessionmaker() as session, session.begin():
        assert await rebuild(session) == len(kept)
    async with app.state.sessionmaker() as session:
        assert await stored_cells(session) == kept
        assert await stored_cells(session, StatsRollupDaily) == daily(kept)


@pytest.mark.postgres_only
async def test_concurrent_matchers_and_a_rebuild_keep_the_rollups_exact(settings: Settings) -> None:
    """Two matchers in small batches share a backlog of purchases (some mismatched) while a rebuild runs: the
    rollups end equal to the records, whatever the interleaving."""
    paths = ("/api/v1/orders", "/api/v1/payments", "/api/v1/waybills")
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        senders = (parties.platform, parties.payment, parties.logistics)
        triples = [purchase(own_buyer=True) for _ in range(30)]
        triples += [purchase(own_buyer=True, payment={"amountPaid": "240.00"}) for _ in range(10)]
        for position in range(3):
            for triple in triples:
                answer = await http.post(paths[position], json=triple[position], headers=senders[position])
                assert answer.status_code == 202, answer.text
        small = settings.model_copy(update={"match_batch_size": 7})
        matchers = [Matcher(app.state.sessionmaker, small) for _ in range(2)]

        async def rebuild_midway() -> None:
            await asyncio.sleep(0.05)
            await run_in_transaction(app.state.sessionmaker, rebuild)

        await asyncio.gather(*(m.drain() for m in matchers), rebuild_midway())
        async with app.state.sessionmaker() as session:
            kept = await stored_cells(session)
            assert kept == await recompute(session)
            assert await stored_cells(session, StatsRollupDaily) == daily(kept)
        assert {code: a.n for code, a in totals(kept, "purchases").items() if a.n} == {
            "DECLARED": 30,
            "MISMATCHED": 10,
        }
