"""The buyer's annual quota holds when two matcher transactions declare purchases of one buyer at once.

Both declarations are forced to overlap (tests/races.py): each is held right after reading the buyer's quota
until the other has read it too, or is blocked by the buyer lock (PostgreSQL) / the write lock (SQLite). The
amounts are such that either purchase fits alone and only a race lets both through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import run_in_transaction
from app.matcher import Matcher
from app.models import Submission
from app.services import declaration
from app.services.match_stage import claim, process
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties
from tests.races import OverlapBarrier
from tests.test_declaration import priced

BUYER = "330106199303033338"


async def _post(
    http: httpx.AsyncClient, parties: Parties, triples: Iterable[tuple[dict[str, Any], ...]], docs: str
) -> None:
    """Post the documents of each triple that ``docs`` names (o, p, w); each is accepted (202), not matched."""
    routes = {
        "o": ("/api/v1/orders", parties.platform),
        "p": ("/api/v1/payments", parties.payment),
        "w": ("/api/v1/waybills", parties.logistics),
    }
    for triple in triples:
        for index, kind in enumerate("opw"):
            if kind in docs:
                path, headers = routes[kind]
                response = await http.post(path, json=triple[index], headers=headers)
                assert response.status_code == 202, response.text


async def _status(http: httpx.AsyncClient, order_no: str) -> str:
    response = await http.get("/api/v1/records", params={"orderNo": order_no}, headers=ADMIN)
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    status: str = item["status"]
    return status


async def test_quota_holds_when_two_matchers_declare_one_buyer_at_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        await _race(app, http, monkeypatch)


async def _race(app: FastAPI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    parties = await file_parties(http)
    matcher = Matcher(app.state.sessionmaker, app.state.settings)
    # 23,000 of the buyer's 26,000 already declared this year.
    earlier = [priced(amount, BUYER) for amount in ("5000.00", "5000.00", "5000.00", "5000.00", "3000.00")]
    await _post(http, parties, earlier, "opw")
    await matcher.drain()
    assert {await _status(http, t[0]["orderNo"]) for t in earlier} == {"DECLARED"}
    # Two purchases of 2,000: either fits (25,000), both do not (27,000). Their orders and payments are in; the
    # two waybills complete them, each in a transaction of its own, at the same time.
    first, second = priced("2000.00", BUYER), priced("2000.00", BUYER)
    await _post(http, parties, (first, second), "op")
    await matcher.drain()
    await _post(http, parties, (first, second), "w")
    async with app.state.sessionmaker() as session:
        seqs = list((await session.scalars(select(Submission.seq).where(Submission.state == "pending"))).all())
    assert len(seqs) == 2

    async with OverlapBarrier(app.state.engine) as barrier:
        read_quotas = declaration.used_quotas

        async def held_after_reading(session: AsyncSession, buyers: Iterable[str], year: int) -> dict[str, Decimal]:
            used = await read_quotas(session, buyers, year)
            await barrier.arrive()
            return used

        monkeypatch.setattr(declaration, "used_quotas", held_after_reading)

        async def matcher_transaction(seq: int) -> None:
            async def unit(session: AsyncSession) -> None:
                rows = await claim(session, 1, [seq])
                assert [row.seq for row in rows] == [seq]
                await process(session, app.state.settings, rows)

            await run_in_transaction(app.state.sessionmaker, unit)

        barrier.armed = True
        await asyncio.gather(*(barrier.party(lambda s=seq: matcher_transaction(s)) for seq in seqs))

    # The first to read was held until the other had read too, or was waiting for a lock: they overlapped.
    assert barrier.releases[0] in {"all arrived", "others blocked"}, barrier.releases
    statuses = sorted([await _status(http, first[0]["orderNo"]), await _status(http, second[0]["orderNo"])])
    assert statuses == ["DECLARED", "REJECTED"], (statuses, barrier.releases)
