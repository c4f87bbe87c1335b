"""Several matchers racing on the same purchases: exactly one record per purchase, each submission applied
once and in its order, every purchase declared.

Three ``app.matcher.main()`` processes (the code of ``python -m app.matcher``, forked by
``crash_forkserver.py``) with micro-batches of 5, polling every 20 ms, while the app in this process (its own
matcher off) accepts the documents of many purchases interleaved: per window of 8 purchases, their orders, then
a change of each order (``appType`` 2, a new ``buyerRegNo``), then their payments, then their waybills. So the
four submissions of one purchase land in different micro-batches, claimed by different matchers at the same
moment; each order number's submissions must still be applied one at a time in acceptance order — the change
after its order (else ``404``) and before the purchase completes (else ``409 RECORD_ALREADY_DECLARED``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.config import Settings
from tests.conftest import serving, soak_level
from tests.factories import file_parties, purchase
from tests.figures import record_figure
from tests.live import clean_env
from tests.soak.pipeline_check import accept, claimed, matcher_started, pipeline_ledger, spawn_matcher, wait_drained

pytestmark = [pytest.mark.soak, pytest.mark.postgres_only, pytest.mark.timeout(900)]

SIZES = {"quick": (120, 2), "full": (400, 3)}  # purchases, matchers
WINDOW = 8  # purchases accepted together, their documents interleaved
CHANGED = "changed_reg"


def _changed(order: dict[str, Any]) -> dict[str, Any]:
    return order | {"appType": "2", "buyerRegNo": CHANGED, "guid": str(uuid.uuid4()).upper()}


async def test_matchers_racing_on_the_same_purchases_make_one_declared_record_each(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    purchases, count = SIZES[soak_level()]
    acknowledged: list[tuple[str, str, str]] = []
    complete: list[tuple[str, str]] = []
    async with serving(settings, wait=False, embedded_matcher=False) as (app, http):
        parties = await file_parties(http)
        engine = app.state.engine
        env = clean_env(SW_DATABASE_URL=database_url, SW_MATCH_BATCH_SIZE="5", SW_MATCH_POLL_S="0.02")
        logs = [tmp_path / f"matcher-{n + 1}.log" for n in range(count)]
        matchers = [spawn_matcher(env, log) for log in logs]
        try:
            assert not any(await asyncio.gather(*(matcher_started(m) for m in matchers)))
            started = time.monotonic()
            for _ in range(0, purchases, WINDOW):
                triples = [purchase(own_buyer=True) for _ in range(WINDOW)]
                orders = [t[0] for t in triples]
                acknowledged.extend(await accept(http, parties, "order", orders))
                await accept(http, parties, "order", [_changed(o) for o in orders])
                acknowledged.extend(await accept(http, parties, "payment", [t[1] for t in triples]))
                acknowledged.extend(await accept(http, parties, "waybill", [t[2] for t in triples]))
                complete.extend((o["ebpCode"], o["orderNo"]) for o in orders)
            await wait_drained(engine, 120, lambda: all(m.alive() for m in matchers), "a matcher")
            seconds = time.monotonic() - started
        finally:
            for matcher in matchers:
                matcher.stop()
        shares = [claimed(log) for log in logs]
        book = await pipeline_ledger(engine, acknowledged, complete)
        async with engine.connect() as conn:
            orders_stored = (
                await conn.execute(
                    text("SELECT version, payload->>'buyerRegNo' AS reg FROM document WHERE doc_type = 'order'")
                )
            ).all()
            statuses = Counter((await conn.execute(text("SELECT status FROM match_record"))).scalars().all())
    book.assert_clean()  # no rejection either: every change applied after its order, before the purchase completed
    documents = 4 * len(complete)
    assert book.submissions == documents
    assert book.outcomes == {"stored": documents}, book.outcomes
    assert book.records == len(complete)
    assert statuses == {"DECLARED": len(complete)}, statuses
    not_changed = [o for o in orders_stored if (o.version, o.reg) != (2, CHANGED)]
    assert not not_changed, f"orders without their change applied once: {not_changed[:5]}"
    assert all(share > 0 for share in shares), f"every matcher took part: {shares}"
    print(
        f"\nmatcher race: {count} matchers, {len(complete)} purchases, {documents} submissions "
        f"{dict(book.outcomes)}, claimed per matcher {shares}, records {dict(statuses)}, {seconds:.1f} s"
    )
    record_figure(
        f"{count} matchers racing on the same purchases ({len(complete)} purchases: order, change, payment, "
        f"waybill interleaved, {documents} documents; micro-batches of 5)",
        f"records per purchase 1 ({book.records}/{len(complete)}, duplicates {len(book.duplicate_records)}); "
        f"each submission applied once {book.exactly_once}/{documents} (twice {len(book.processed_twice)}, "
        f"rejected {len(book.rejected)}); declared {statuses['DECLARED']}/{len(complete)}; "
        f"claimed per matcher {'/'.join(map(str, shares))}",
        "1; each once, in order; all",
    )
