"""The mock agencies' memory: answers by idempotency key, counters, and the tax agency's per-buyer totals.

One store belongs to one mock-agencies app (made by its factory); nothing lives at module level. Deciding and
recording an answer happen under one ``asyncio.Lock`` so concurrent calls with one key are answered once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.mock_agencies.rules.after_release import KnownInventory
from app.mock_agencies.rules.common import QuotaUse

AGENCIES = ("customs", "inspection", "tax", "fx")


@dataclass
class StoredAnswer:
    body: dict[str, Any]  # the JSON answer, returned again unchanged for the same key
    request_sha256: str
    callback: CallbackState | None = None  # customs, when it held the declaration for inspection
    record_id: str = ""  # the package's recordId: two keys for one record would be a double declaration
    deliveries: int = 1  # calls that reached the answer with this key: the first, then every replay


@dataclass
class CallbackState:
    """A release callback owed to the single window: the same ``webhook-id`` and body on every try."""

    url: str
    webhook_id: str
    body: bytes
    agency: str = "customs"  # whose secret signs it
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0


@dataclass
class AgencyLedger:
    answers: dict[str, StoredAnswer] = field(default_factory=dict)
    requests: int = 0  # every POST received, whatever became of it
    batch_requests: int = 0  # those of them to the batch route
    replays: int = 0  # answered again from memory (same key)
    key_conflicts: int = 0  # same key with a different body (answered as the first time, per the contract)
    faults: Counter[str] = field(default_factory=Counter)  # injected: unavailable / throttled / hang / slow_answer

    def stats(self, agency: str) -> dict[str, Any]:
        callbacks = Counter(a.callback.status for a in self.answers.values() if a.callback is not None)
        return {
            "agency": agency,
            "answered": len(self.answers),
            "requests": self.requests,
            "batchRequests": self.batch_requests,
            "replays": self.replays,
            "keyConflicts": self.key_conflicts,
            "faults": {kind: self.faults[kind] for kind in ("unavailable", "throttled", "hang", "slow_answer")},
            "callbacks": {status: callbacks[status] for status in ("pending", "delivered", "failed")},
        }

    def answer_list(self) -> list[dict[str, Any]]:
        return [
            {"idempotencyKey": key, "recordId": answer.record_id, "deliveries": answer.deliveries}
            for key, answer in self.answers.items()
        ]


class MockAgencyStore:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.ledgers = {agency: AgencyLedger() for agency in AGENCIES}
        self._annual_totals: dict[tuple[str, int], Decimal] = {}
        # Customs' own memory of the inventories it accepted, by recordId (cancels and returns are decided on it).
        self.inventories: dict[str, KnownInventory] = {}
        # What each record added to its buyer's annual total (the tax agency), given back by a cancel or return.
        self.quota_uses: dict[str, QuotaUse] = {}

    def ledger(self, agency: str) -> AgencyLedger:
        return self.ledgers[agency]

    def count_request(self, agency: str, batch: bool = False) -> None:
        ledger = self.ledgers[agency]
        ledger.requests += 1
        ledger.batch_requests += batch

    def count_fault(self, agency: str, kind: str) -> None:
        self.ledgers[agency].faults[kind] += 1

    async def answer_once(
        self, agency: str, key: str, request_sha256: str, decide: Callable[[], StoredAnswer]
    ) -> tuple[StoredAnswer, bool]:
        """The stored answer for ``key``, or ``decide()`` recorded as it; ``True`` when it was a replay."""
        async with self.lock:
            ledger = self.ledgers[agency]
            stored = ledger.answers.get(key)
            if stored is not None:
                ledger.replays += 1
                stored.deliveries += 1
                if stored.request_sha256 != request_sha256:
                    ledger.key_conflicts += 1
                return stored, True
            stored = decide()
            ledger.answers[key] = stored
            return stored, False

    # The tax agency's view of each buyer's calendar year (dutiable values it accepted, once per key).
    # Only called inside ``answer_once``'s ``decide``, i.e. under the lock.
    def annual_total(self, buyer_id_number: str, year: int) -> Decimal:
        return self._annual_totals.get((buyer_id_number, year), Decimal(0))

    def add_to_annual_total(self, buyer_id_number: str, year: int, dutiable_value: Decimal) -> None:
        key = (buyer_id_number, year)
        self._annual_totals[key] = self.annual_total(buyer_id_number, year) + dutiable_value

    def give_back(self, record_id: str, share: Decimal) -> None:
        """A cancel (``share`` 1) or return (the part returned) approved by customs: the buyer's annual total no
        longer counts that part of the record's purchase."""
        use = self.quota_uses.get(record_id)
        if use is not None:
            self.add_to_annual_total(use.buyer_id_number, use.year, -(use.dutiable_value * share))
