"""The risk counters (app/services/risk.py) against the real database: windows, and concurrent writers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI

from app.services.risk import Counts, Observation, count_purchases, prune_counters

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def seen(buyer: str, address: str = "a-1", phone: str = "p-1", platform: str = "P1") -> Observation:
    return Observation(buyer=buyer, address=address, phone=phone, platform=platform)


async def count(app: FastAPI, observations: list[Observation], now: datetime = NOW) -> list[Counts]:
    async with app.state.sessionmaker() as session, session.begin():
        return await count_purchases(session, observations, now, window_days=30)


async def test_distinct_counts_within_the_window(app: FastAPI) -> None:
    await count(app, [seen("b-1"), seen("b-2")], NOW - timedelta(days=31))  # outside the 30 days
    await count(app, [seen("b-3")], NOW - timedelta(days=29))
    [mine] = await count(app, [seen("b-4")])
    assert mine.ids_at_address == 2  # b-3 and b-4
    [again] = await count(app, [seen("b-4")])  # the same buyer again is not another buyer
    assert again.ids_at_address == 2
    assert again.orders_of_id_day == 2


async def test_orders_and_platforms_in_24_hours(app: FastAPI) -> None:
    await count(app, [seen("b-1", platform="P1")], NOW - timedelta(hours=25))
    await count(app, [seen("b-1", platform="P2")], NOW - timedelta(hours=23))
    [mine] = await count(app, [seen("b-1", platform="P3")])
    assert (mine.orders_of_id_day, mine.platforms_of_id_day) == (2, 2)
    batch = await count(app, [seen("b-9", address=f"x-{k}") for k in range(4)])
    assert [c.addresses_of_id for c in batch] == [4, 4, 4, 4]  # a batch counts its own purchases
    assert [c.orders_of_id_day for c in batch] == [4, 4, 4, 4]


@pytest.mark.postgres_only
async def test_concurrent_writers_lose_no_count(app: FastAPI) -> None:
    """Sixteen transactions add to the same counters at once: upserts, so every one counts."""
    writers = 16

    async def one(k: int) -> None:
        await count(app, [seen("b-shared", address=f"addr-{k}", phone="p-shared")])

    await asyncio.gather(*(one(k) for k in range(writers)))
    [after] = await count(app, [seen("b-shared", address="addr-0", phone="p-shared")])
    assert after.orders_of_id_day == writers + 1
    assert after.addresses_of_id == writers
    assert after.ids_at_phone == 1


async def test_price_ratio_against_the_goods_records_median(app: FastAPI) -> None:
    usual = [seen(f"b-{k}") for k in range(20)]
    priced = [Observation(o.buyer, o.address, o.phone, o.platform, (("item-1", Decimal("100")),)) for o in usual]
    counted = await count(app, priced)
    assert counted[0].price_ratio is not None  # 20 declarations in this batch: the median is known
    [cheap] = await count(app, [Observation("b-x", "a-x", "p-x", "P1", (("item-1", Decimal("30")),))])
    assert cheap.price_ratio is not None
    assert 0.25 < cheap.price_ratio < 0.35
    [unknown] = await count(app, [Observation("b-y", "a-y", "p-y", "P1", (("item-2", Decimal("30")),))])
    assert unknown.price_ratio is None


async def test_one_buyer_on_several_days_is_one_buyer(app: FastAPI) -> None:
    for days_ago in (3, 2, 1):
        await count(app, [seen("b-1")], NOW - timedelta(days=days_ago))
    [mine] = await count(app, [seen("b-2")])
    assert mine.ids_at_address == 2  # b-1 (three days) and b-2


async def test_pruning_deletes_only_what_no_window_reads(app: FastAPI) -> None:
    await count(app, [seen("b-old", platform="P1")], NOW - timedelta(days=40))
    await count(app, [seen("b-1")], NOW - timedelta(days=2))
    async with app.state.sessionmaker() as session, session.begin():
        deleted = await prune_counters(session, NOW, window_days=30)
    # b-old: its three day links, its hour link and its order count; b-1: its hour link and its order count.
    assert deleted == 7
    [after] = await count(app, [seen("b-2")])
    assert after.ids_at_address == 2  # b-1 two days ago still counts; b-old was gone from the window anyway
    async with app.state.sessionmaker() as session, session.begin():
        assert await prune_counters(session, NOW, window_days=30) == 0  # nothing more to delete


def paid(buyer: str, second: str | None = "P1/20261111100000", platform: str = "P1") -> Observation:
    return Observation(buyer=buyer, address=f"a-{buyer}", phone=f"p-{buyer}", platform=platform, pay_second=second)


async def test_r7_counts_distinct_buyers_paying_one_platform_in_one_second(app: FastAPI) -> None:
    batch = await count(app, [paid(f"b-{k}") for k in range(3)])
    assert [c.ids_at_pay_second for c in batch] == [3, 3, 3]  # a batch counts its own payments
    [again] = await count(app, [paid("b-0")])  # the same buyer paying again in that second is not another
    assert again.ids_at_pay_second == 3
    [fourth] = await count(app, [paid("b-3")], NOW + timedelta(hours=30))  # matched a day later: still counts
    assert fourth.ids_at_pay_second == 4
    [other_second] = await count(app, [paid("b-9", "P1/20261111100001")])
    assert other_second.ids_at_pay_second == 1
    [unpaid] = await count(app, [paid("b-8", None)])
    assert unpaid.ids_at_pay_second == 1
    [late] = await count(app, [paid("b-7")], NOW + timedelta(days=3))  # past the two days: counted afresh
    assert late.ids_at_pay_second == 1


async def test_pruning_deletes_pay_second_links_after_two_days(app: FastAPI) -> None:
    await count(app, [paid("b-1")], NOW - timedelta(days=3))
    await count(app, [paid("b-2")], NOW - timedelta(days=1))
    async with app.state.sessionmaker() as session, session.begin():
        before = await prune_counters(session, NOW, window_days=30)
    async with app.state.sessionmaker() as session, session.begin():
        assert await prune_counters(session, NOW, window_days=30) == 0
    # b-1: its hour link, its order count and its pay-second link; b-2: its hour link and order count.
    assert before == 5
    [now] = await count(app, [paid("b-3")])
    assert now.ids_at_pay_second == 2  # b-2 (a day ago) and b-3


@pytest.mark.postgres_only
async def test_concurrent_payments_in_one_second_lose_no_buyer(app: FastAPI) -> None:
    writers = 16
    await asyncio.gather(*(count(app, [paid(f"b-{k}")]) for k in range(writers)))
    [after] = await count(app, [paid("b-last")])
    assert after.ids_at_pay_second == writers + 1
