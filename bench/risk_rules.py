"""Precision and recall of each risk rule on the workload with fraud mixed in (bench/workload.py).

The rules are the service's own pure functions (app/rules/risk.py); the counters are kept here in memory with
the same semantics as the database's (distinct partners per keyed subject, all purchases of the run falling in
one day and one window). Usage: ``./scripts/uv run --frozen python -m bench.risk_rules [purchases] [seed]``.

A rule's precision: of the purchases it flagged, the share that belong to a fraud scheme. Its recall: of the
purchases of the kind it is meant to catch (``TARGET_RULE``), the share it flagged. A scheme's first purchases
cannot be caught (a threshold is a count), so recall below 1 is expected.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.rules.identity import normalise_phone
from app.rules.risk import (
    RULES,
    PurchaseSignals,
    Thresholds,
    median_price,
    normalise_address,
    price_bucket,
    warnings_for,
)
from bench.workload import FRAUD_KINDS, TARGET_RULE, LabelledPurchase, labelled_purchases

ANNUAL_LIMIT = Decimal("26000")


@dataclass
class Counters:
    """What app/services/risk.py keeps in risk_link / risk_count, in memory."""

    ids_at_address: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    addresses_of_id: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    ids_at_phone: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    platforms_of_id: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    orders_of_id: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    quota_used: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    prices: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    ids_at_pay_second: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, order: dict[str, Any], payment: dict[str, Any]) -> PurchaseSignals:
        buyer = str(order["buyerIdNumber"]).upper()
        address = normalise_address(str(order["consigneeAddress"]))
        phone = normalise_phone(str(order["consigneeTelephone"]))
        self.ids_at_address[address].add(buyer)
        self.addresses_of_id[buyer].add(address)
        self.ids_at_phone[phone].add(buyer)
        self.platforms_of_id[buyer].add(str(order["ebpCode"]))
        self.orders_of_id[buyer] += 1
        self.quota_used[buyer] += Decimal(str(order["goodsValue"]))
        paid = self.ids_at_pay_second[(str(order["ebpCode"]), str(payment["payTime"]))]
        paid.add(buyer)
        lines = [(f"{order['ebcCode']}/{line['itemNo']}", Decimal(line["price"])) for line in order["orderList"]]
        for item, price in lines:
            self.prices[item][price_bucket(price)] += 1
        medians = {item: median_price(self.prices[item], 20) for item, _ in lines}
        ratios = [float(price) / m for item, price in lines if (m := medians[item])]
        return PurchaseSignals(
            len(self.ids_at_address[address]),
            len(self.addresses_of_id[buyer]),
            len(self.ids_at_phone[phone]),
            self.orders_of_id[buyer],
            len(self.platforms_of_id[buyer]),
            self.quota_used[buyer],
            ANNUAL_LIMIT,
            min(ratios) if ratios else None,
            len(paid),
        )


@dataclass(frozen=True)
class RuleScore:
    rule: str
    flagged: int
    true_positives: int
    targets: int
    caught_targets: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.caught_targets / self.targets if self.targets else None


def score(purchases: Iterable[LabelledPurchase], thresholds: Thresholds | None = None) -> dict[str, RuleScore]:
    thresholds = thresholds or Thresholds()
    counters = Counters()
    flagged: dict[str, list[LabelledPurchase]] = defaultdict(list)
    labelled = list(purchases)
    for item in labelled:
        for warning in warnings_for(counters.add(item.purchase.order, item.purchase.payment), thresholds):
            flagged[warning.rule].append(item)
    rules = sorted((set(RULES) - {"R8"}) | set(TARGET_RULE.values()))  # R8 judges enterprises, not purchases
    scores = {}
    for rule in rules:
        kinds = {kind for kind, target in TARGET_RULE.items() if target == rule}
        hits = flagged.get(rule, [])
        scores[rule] = RuleScore(
            rule,
            flagged=len(hits),
            true_positives=sum(item.fraud is not None for item in hits),
            targets=sum(item.fraud in kinds for item in labelled),
            caught_targets=sum(item.fraud in kinds for item in hits),
        )
    return scores


def _pct(value: float | None) -> str:
    return "   —  " if value is None else f"{value:6.1%}"


def main(argv: list[str]) -> None:
    count = int(argv[1]) if len(argv) > 1 else 20_000
    seed = int(argv[2]) if len(argv) > 2 else 0
    purchases = list(labelled_purchases("RISK", count, seed))
    kinds = {kind: sum(p.fraud == kind for p in purchases) for kind in FRAUD_KINDS}
    print(f"{len(purchases)} purchases, fraud: {kinds}")
    print("rule  flagged  precision  recall   (meant to catch)")
    for rule, s in score(purchases).items():
        targets = ", ".join(k for k, r in TARGET_RULE.items() if r == rule) or "-"
        print(f"{rule:4}  {s.flagged:7}  {_pct(s.precision)}    {_pct(s.recall)}   ({targets})")


if __name__ == "__main__":
    main(sys.argv)
