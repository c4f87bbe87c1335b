"""PostgreSQL's monthly partitions (docs/storage.md): the migration moves a database with data onto them and
every answer stays the same; rows land in their month's partition; a month without one goes to the DEFAULT
partition and is moved out when the month is created; a query by key with its date bound reads one partition."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.config import Settings
from app.db import utcnow
from app.migrate import upgrade
from app.models import RawMessage
from app.partitioning import PARTITIONED, Month
from app.services.partitions import ensure
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase
from tests.test_migrations import scratch_url  # noqa: F401 - the fixture: a database of the test's own

pytestmark = pytest.mark.postgres_only

BEFORE_PARTITIONING = "0009_risk_credit"


async def table_rows(conn: AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
    rows = {}
    for table, column in PARTITIONED.items():
        key = {"submission": "seq"}.get(table, "id")
        result = await conn.execute(text(f"SELECT * FROM {table} ORDER BY {column}, {key}"))  # noqa: S608
        rows[table] = [tuple(row) for row in result]
    return rows


async def answers(client: httpx.AsyncClient, record_id: str) -> list[Any]:
    """What people see: the record with its timeline, and the submission log with the receipts. (The feed's
    page depends on the oldest transaction running anywhere in the cluster — shared with other databases
    here — so its order is compared in the table instead.)"""
    record = (await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)).json()
    submissions = (await client.get("/api/v1/admin/submissions?limit=100", headers=ADMIN)).json()
    return [record, submissions]


async def feed_positions(conn: AsyncConnection) -> list[tuple[int, int]]:
    return [
        (int(tx), int(id_)) for tx, id_ in await conn.execute(text("SELECT tx, id FROM record_event ORDER BY tx, id"))
    ]


async def test_migration_moves_a_database_with_data_and_every_answer_stays_the_same(
    scratch_url: str,  # noqa: F811 - the fixture imported above
    settings: Settings,
) -> None:
    own = settings.model_copy(update={"database_url": scratch_url})
    await asyncio.to_thread(upgrade, own, BEFORE_PARTITIONING)  # Alembic runs its own event loop
    async with serving(own, supervision_rate_regular=0.0) as (_, client):
        parties = await file_parties(client)
        receipts = [(await post_triple(client, parties, purchase()))[-1].json() for _ in range(3)]
        record_id = receipts[0]["recordId"]
        before = await answers(client, record_id)
        engine = create_async_engine(scratch_url)
        async with engine.connect() as conn:
            rows_before = await table_rows(conn)

        await asyncio.to_thread(upgrade, own)  # onto the partitioned layout, with the app still connected

        async with engine.connect() as conn:
            assert await table_rows(conn) == rows_before
            kinds = dict((await conn.execute(text("SELECT relname, relkind::text FROM pg_class"))).all())
            assert {kinds[table] for table in PARTITIONED} == {"p"}
            this_month = f"submission_p{Month.of(utcnow()).suffix()}"
            placed = await conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM submission GROUP BY 1"))
            assert dict(placed.all()) == {this_month: 9}
            seq_default = await conn.scalar(text("SELECT pg_get_serial_sequence('record_event', 'id')"))
            assert seq_default == "public.record_event_id_seq"
        assert await answers(client, record_id) == before
        # And the service goes on writing: a new purchase, its events after every old one in feed order.
        async with engine.connect() as conn:
            positions_before = await feed_positions(conn)
        later = (await post_triple(client, parties, purchase()))[-1].json()
        assert later["recordStatus"] == "DECLARED"
        async with engine.connect() as conn:
            positions = await feed_positions(conn)
        await engine.dispose()
        assert positions[: len(positions_before)] == positions_before
        assert len(positions) > len(positions_before)


async def test_rows_land_in_their_month_and_a_month_without_a_partition_in_default_until_created(
    app: FastAPI,
) -> None:
    far = Month(2019, 1)
    row = {
        "id": uuid.uuid4(),
        "sha256": "0" * 64,
        "content_type": "application/json",
        "body": b"{}",
        "sender": "test",
        "received_at": far.start().replace(day=15),
    }
    now_row = row | {"id": uuid.uuid4(), "received_at": utcnow()}
    async with app.state.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS raw_message_p201901"))
        await conn.execute(insert(RawMessage), [row, now_row])

    async def where(message_id: uuid.UUID) -> str:
        async with app.state.engine.connect() as conn:
            sql = text("SELECT tableoid::regclass::text FROM raw_message WHERE id = :id")
            return str(await conn.scalar(sql, {"id": message_id}))

    assert await where(now_row["id"]) == f"raw_message_p{Month.of(utcnow()).suffix()}"
    assert await where(row["id"]) == "raw_message_default"  # the insert did not fail
    created = await ensure(app.state.engine, 0, now=far.start())
    assert "raw_message_p201901" in created
    assert await where(row["id"]) == "raw_message_p201901"


async def test_a_query_by_key_with_its_date_bound_reads_only_that_months_partition(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    parties = await file_parties(client)
    record_id = (await post_triple(client, parties, purchase()))[-1].json()["recordId"]
    month = Month.of(utcnow())
    await ensure(app.state.engine, 2)
    async with app.state.engine.connect() as conn:
        await conn.execute(text("ANALYZE record_event"))
        plan = "\n".join(
            str(line)
            for (line,) in await conn.execute(
                text(
                    "EXPLAIN SELECT id, kind FROM record_event "
                    "WHERE record_id = :record AND at >= :low AND at < :high ORDER BY id"
                ),
                {"record": uuid.UUID(record_id), "low": month.start(), "high": month.end()},
            )
        )
    # The relations scanned ("… Scan on record_event_p202612 record_event"), not the index an index or bitmap scan
    # names ("… on record_event_p202612_record_id_id_idx"): which of the two the planner picks varies with the data.
    scanned = set(re.findall(r"Scan(?: using \S+)? on (record_event_\w+?)(?:\s|$)", plan)) - {
        name for name in re.findall(r"on (record_event_\w+_idx)", plan)
    }
    # One partition scanned out of this month, the months ahead and the default.
    assert scanned == {f"record_event_p{month.suffix()}"}, plan
