"""The benchmark's workload (bench/workload.py) is what it claims to be: valid documents, purchases that match
(or show the discrepancy they were built with), about 5 % mismatches and 2 % resends, interleaved, and batches
a sender could send. Pure: no database, no timing."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from app.ceb import codec
from app.rules.matching import GoodsFacts, MatchInput, evaluate
from app.rules.tax import ANNUAL_LIMIT, SINGLE_LIMIT, TaxableLine, assess
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from bench import workload
from bench.loadgen import percentile

PURCHASES = 4000

GOODS = {
    item.item_no: GoodsFacts(item.item_no, item.vat_rate, item.consumption_tax_rate)
    for items in workload.CATALOGUE.values()
    for item in items
}


def _outcome(purchase: workload.Purchase) -> tuple[str, set[str], set[str]]:
    result = evaluate(
        MatchInput(
            order=OrderIn.model_validate(purchase.order),
            payments=[PaymentIn.model_validate(purchase.payment)],
            waybills=[WaybillIn.model_validate(purchase.waybill)],
            goods=GOODS,
        )
    )
    errors = {d.code for d in result.discrepancies if d.severity == "error"}
    warnings = {d.code for d in result.discrepancies if d.severity == "warning"}
    return result.status, errors, warnings


@pytest.fixture(scope="module")
def purchases() -> list[workload.Purchase]:
    return list(workload.purchases("TW", 0, PURCHASES))


def test_triples_match_unless_built_not_to(purchases: list[workload.Purchase]) -> None:
    for purchase in purchases:
        status, errors, warnings = _outcome(purchase)
        assert not warnings, (purchase.index, warnings)
        if purchase.mismatch is None:
            assert (status, errors) == ("MATCHED", set()), (purchase.index, errors)
        else:
            assert status == "MISMATCHED"
            assert purchase.mismatch in errors, (purchase.index, purchase.mismatch, errors)


def test_mismatch_share_is_about_five_percent(purchases: list[workload.Purchase]) -> None:
    share = sum(p.mismatch is not None for p in purchases) / len(purchases)
    assert 0.035 <= share <= 0.065, share
    kinds = Counter(p.mismatch for p in purchases if p.mismatch)
    assert len(kinds) == 4, kinds


def test_purchases_stay_within_the_limits(purchases: list[workload.Purchase]) -> None:
    """Under the single limit, and each buyer (two purchases of a stream) under the annual quota."""
    per_buyer: Counter[str] = Counter()
    for purchase in purchases:
        order = purchase.order
        lines = [
            TaxableLine(line["gnum"], Decimal(line["totalPrice"]), GOODS[line["itemNo"]].vat_rate,
                        GOODS[line["itemNo"]].consumption_tax_rate)
            for line in order["orderList"]
        ]  # fmt: skip
        value = assess(lines, freight=Decimal(order["freight"])).dutiable_value
        assert value <= SINGLE_LIMIT
        assert 1 <= len(order["orderList"]) <= 5
        per_buyer[order["buyerIdNumber"]] += value
    assert max(per_buyer.values()) <= ANNUAL_LIMIT
    assert len(per_buyer) >= len(purchases) // 2


def test_stream_interleaves_every_document_once_with_about_two_percent_resends() -> None:
    docs = list(workload.document_stream("TS", 0, PURCHASES))
    originals = [d for d in docs if not d.duplicate]
    resends = [d for d in docs if d.duplicate]
    assert len(originals) == 3 * PURCHASES
    assert len({d.key for d in originals}) == 3 * PURCHASES
    share = len(resends) / len(docs)
    assert 0.013 <= share <= 0.027, share
    seen: dict[tuple[str, str, str], dict[str, object]] = {}
    for doc in docs:
        if doc.duplicate:
            original = seen[doc.key]  # a resend follows its original
            assert {k: v for k, v in doc.body.items() if k != "guid"} == {
                k: v for k, v in original.items() if k != "guid"
            }
            assert doc.body["guid"] != original["guid"]
        else:
            seen[doc.key] = doc.body
    # The documents of one purchase arrive in every order, and other purchases' documents come between them.
    orders = Counter(tuple(d.doc_type for d in originals if d.purchase == p) for p in range(200))
    assert len(orders) == 6, orders
    positions = {p: [i for i, d in enumerate(originals) if d.purchase == p] for p in range(200)}
    assert any(max(pos) - min(pos) > 2 for pos in positions.values())


def test_stream_is_deterministic() -> None:
    first = [(d.key, d.body) for d in workload.document_stream("TD", 10, 300, seed=7)]
    again = [(d.key, d.body) for d in workload.document_stream("TD", 10, 300, seed=7)]
    assert first == again


def test_batches_are_what_one_sender_sends() -> None:
    docs = list(workload.document_stream("TB", 0, 1500))
    batches = list(workload.batches(docs))
    assert sorted(d.key for b in batches for d in b.docs) == sorted(d.key for d in docs)
    for batch in batches:
        assert 1 <= len(batch.docs) <= workload.BATCH_SIZE
        assert len({d.key for d in batch.docs}) == len(batch.docs)
        assert {(d.doc_type, d.sender) for d in batch.docs} == {(batch.doc_type, batch.sender)}
    assert sum(len(b.docs) == workload.BATCH_SIZE for b in batches) >= len(docs) // workload.BATCH_SIZE - 9


def test_xml_batches_follow_the_schema() -> None:
    docs = workload.document_stream("TX", 0, 400)
    for batch in list(workload.batches(docs))[:6]:
        parsed = codec.parse_message(batch.xml_body())
        assert len(parsed.records) == len(batch.docs)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([5.0], 99) == 5.0
