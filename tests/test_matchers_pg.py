"""Several matchers over one PostgreSQL database: disjoint shares (SKIP LOCKED), and the submissions of one
order number applied in acceptance order even when another matcher holds an earlier one."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from app.config import Settings
from app.matcher import Matcher
from app.models import Dispatch, Document, MatchRecord, RecordEvent, Submission
from tests.conftest import serving
from tests.factories import file_parties, purchase

pytestmark = pytest.mark.postgres_only
PATHS = ("/api/v1/orders", "/api/v1/payments", "/api/v1/waybills")


async def test_two_matchers_share_a_backlog_and_process_each_submission_once(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        senders = (parties.platform, parties.payment, parties.logistics)
        triples = [purchase(own_buyer=True) for _ in range(40)]
        # Interleaved the way they arrive: every purchase's documents spread over the backlog.
        for position in range(3):
            for triple in triples:
                answer = await http.post(PATHS[position], json=triple[position], headers=senders[position])
                assert answer.status_code == 202, answer.text
        small = settings.model_copy(update={"match_batch_size": 7})
        first, second = (Matcher(app.state.sessionmaker, small) for _ in range(2))
        claimed = await asyncio.gather(first.drain(), second.drain())
        # Both took part, and between them every submission was taken once.
        assert all(count > 0 for count in claimed), claimed
        assert sum(claimed) == 120
        async with app.state.sessionmaker() as session:
            states = Counter((await session.scalars(select(Submission.outcome))).all())
            assert states == {"stored": 120}
            statuses = Counter((await session.scalars(select(MatchRecord.status))).all())
            assert statuses == {"DECLARED": 40}
            assert await session.scalar(select(func.count()).select_from(Document)) == 120
            assert await session.scalar(select(func.count()).select_from(Dispatch)) == 160
            changes = (
                await session.scalars(select(RecordEvent.detail).where(RecordEvent.kind == "status_changed"))
            ).all()
            assert sum(1 for change in changes if change["to"] == "MATCHED") == 40


async def test_a_matcher_leaves_a_change_whose_create_another_matcher_holds(settings: Settings) -> None:
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        order, _, _ = purchase()
        created = await http.post(PATHS[0], json=order, headers=parties.platform)
        change = order | {"appType": "2", "buyerName": "王五"}
        changed = await http.post(PATHS[0], json=change, headers=parties.platform)
        first_seq, change_seq = created.json()["submissionSeq"], changed.json()["submissionSeq"]
        matcher = Matcher(app.state.sessionmaker, settings)
        # Another matcher holds the create: this one must not apply the change before it.
        async with app.state.engine.connect() as other:
            transaction = await other.begin()
            await other.execute(text("SELECT seq FROM submission WHERE seq = :s FOR UPDATE"), {"s": first_seq})
            assert (await matcher.run_once()).claimed == 0
            await transaction.rollback()
        assert await matcher.drain() == 2
        async with app.state.sessionmaker() as session:
            rows = {row.seq: row for row in await session.scalars(select(Submission))}
            assert rows[first_seq].http_status == 201
            assert rows[change_seq].http_status == 200
            document = await session.scalar(select(Document))
            assert document is not None
            assert (document.version, document.payload["buyerName"]) == (2, "王五")
