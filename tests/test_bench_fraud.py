"""The fraud mixed into the benchmark's workload (bench/workload.py) and the rules' scores on it
(bench/risk_rules.py). Pure: no database, no timing."""

from __future__ import annotations

from collections import Counter

from bench import workload
from bench.risk_rules import score
from tests.test_bench_workload import _outcome


def test_fraud_is_mixed_in_deterministically_and_every_purchase_still_matches() -> None:
    mixed = list(workload.labelled_purchases("TF", 2000))
    assert [p.purchase.order for p in mixed] == [p.purchase.order for p in workload.labelled_purchases("TF", 2000)]
    kinds = Counter(p.fraud for p in mixed)
    assert kinds[None] == 2000
    assert set(kinds) == {None, *workload.FRAUD_KINDS}
    # Fraudsters send consistent triples: the three documents agree, the fraud is in the pattern.
    assert all(_outcome(p.purchase)[:2] == ("MATCHED", set()) for p in mixed)
    orders = [p.purchase.order["orderNo"] for p in mixed]
    assert len(set(orders)) == len(orders)


def test_each_rule_catches_its_scheme_and_no_honest_purchase() -> None:
    scores = score(workload.labelled_purchases("TF", 4000))
    for rule in ("R1", "R2", "R3", "R4", "R6"):
        assert scores[rule].flagged > 0, rule
        assert scores[rule].precision == 1.0, rule  # no honest buyer of the workload is flagged
    for rule in ("R1", "R2", "R4"):
        recall = scores[rule].recall
        assert recall is not None
        assert 0.4 <= recall < 1.0, (rule, recall)  # a scheme's first purchases are below the threshold
    assert scores["R6"].recall == 1.0  # every under-priced purchase, once its items have a median


def test_under_priced_purchases_are_priced_under() -> None:
    under = next(p for p in workload.labelled_purchases("TF", 2000) if p.fraud == "underpriced")
    line = under.purchase.order["orderList"][0]
    catalogue = {i.item_no: i.price for items in workload.CATALOGUE.values() for i in items}
    assert float(line["price"]) < 0.31 * float(catalogue[line["itemNo"]])


def test_honest_purchases_are_paid_at_spread_times_and_r7_catches_the_pay_rings() -> None:
    honest = [p.payment for p in workload.purchases("TF", 0, 20_000)]
    buyers: dict[tuple[str, str], set[str]] = {}
    for p in honest:
        buyers.setdefault((p["ebpCode"], p["payTime"]), set()).add(p["payerIdNumber"])
    assert max(len(b) for b in buyers.values()) < 10  # R7's default: normal traffic does not reach it
    assert len({p["payTime"] for p in honest}) > 10_000
    scores = score(workload.labelled_purchases("TF", 4000))
    r7 = scores["R7"]
    assert r7.flagged > 0
    assert r7.precision is not None
    assert r7.precision >= 0.95  # an honest buyer paying in a ring's second is flagged with it
    assert r7.recall is not None
    assert 0.3 <= r7.recall < 1.0  # a ring's first nine payments are below the threshold
    assert "R8" not in scores  # an enterprise-level rule: not scored per purchase
