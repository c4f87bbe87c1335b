"""The migration's analytics views (and, on PostgreSQL, the read-only role granted them): they answer the
same figures as the rollups and the records, and carry no personal data."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.factories import file_parties, post_triple, purchase

VIEWS = ("analytics_rollup_hourly", "analytics_purchase", "analytics_document")


async def test_views_agree_with_the_rollups_and_hold_no_buyer_id(app: FastAPI, client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    for _ in range(2):
        await post_triple(client, parties, purchase(own_buyer=True))
    await post_triple(client, parties, purchase(own_buyer=True, payment={"amountPaid": "240.00"}))
    async with app.state.engine.connect() as conn:
        by_status = dict(
            (await conn.execute(text("SELECT status, count(*) FROM analytics_purchase GROUP BY status"))).all()
        )
        assert by_status == {"DECLARED": 2, "MISMATCHED": 1}
        rolled = dict(
            (
                await conn.execute(
                    text(
                        "SELECT code, sum(n) FROM analytics_rollup_hourly WHERE metric = 'purchases' "
                        "GROUP BY code HAVING sum(n) > 0"
                    )
                )
            ).all()
        )
        assert rolled == by_status
        tax = (await conn.execute(text("SELECT tax_cny FROM analytics_purchase WHERE status = 'DECLARED'"))).scalars()
        assert {Decimal(str(value)) for value in tax} == {Decimal("46.12")}
        documents = (await conn.execute(text("SELECT count(*) FROM analytics_document WHERE state = 'done'"))).scalar()
        assert documents == 9
        for view in VIEWS:
            columns = (await conn.execute(text(f"SELECT * FROM {view} WHERE 1 = 0"))).keys()  # noqa: S608
            assert not any("buyer" in column or "payload" in column for column in columns), view


@pytest.mark.postgres_only
async def test_the_read_only_role_reads_the_views_and_nothing_else(app: FastAPI) -> None:
    async with app.state.engine.connect() as conn:
        login = (await conn.execute(text("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'sw_readonly'"))).scalar()
        assert login is False
        for view in VIEWS:
            granted = await conn.scalar(text(f"SELECT has_table_privilege('sw_readonly', '{view}', 'SELECT')"))
            assert granted, view
            writes = await conn.scalar(text(f"SELECT has_table_privilege('sw_readonly', '{view}', 'INSERT')"))
            assert not writes, view
        for table in ("match_record", "stats_rollup", "submission", "api_key", "document", "raw_message"):
            assert not await conn.scalar(text(f"SELECT has_table_privilege('sw_readonly', '{table}', 'SELECT')"))
    async with app.state.engine.begin() as conn:
        await conn.execute(text("SET LOCAL ROLE sw_readonly"))
        assert (await conn.execute(text("SELECT count(*) FROM analytics_purchase"))).scalar() == 0
        with pytest.raises(Exception, match="permission denied"):
            async with conn.begin_nested():
                await conn.execute(text("SELECT count(*) FROM match_record"))
