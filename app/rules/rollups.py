"""What a purchase adds to the statistics rollups, and how figures are read back from them (pure).

The rollups are sums over purchases: a purchase's *contribution* is a function of its record alone
(``contribution``). The pipeline keeps them current by adding, in the transaction that changes a record,
``contribution(after) - contribution(before)``; ``sw stats rebuild`` recomputes the sum from every record.
Both go through this one function, which is why they agree: the sum of the differences telescopes to the
contribution of the record as it is now.

Example: a purchase first seen at 10:12 that matched at 10:20 contributes ``purchases/MATCHED`` at 10:00 and
``matched`` at 10:00; declared at 10:21 it moves to ``purchases/DECLARED`` (−1 MATCHED, +1 DECLARED).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

# Amounts are summed in SQL as integers of 1/100,000 yuan (the scale of the declarations' decimals): exact on
# PostgreSQL and SQLite alike (SQLite's NUMERIC is a float).
AMOUNT_SCALE = Decimal("100000")

# Time to clear, in seconds, counted in fixed log-scale buckets: bucket 0 is under 1 s, bucket b ≥ 1 holds
# [2^(b-1), 2^b) s, the last bucket everything from 2^(LAST-1) s (about 48 days) on. Fixed edges make the
# buckets of any hours and parties add up; a percentile read from them is within a factor of 2.
LAST_BUCKET = 23
DURATIONS = ("t_match", "t_customs", "t_e2e")
# A cell that counts purchases (so buyers) is shown only from this many on (statistical disclosure control).
MIN_CELL = 5
OPEN_CLOCKS = {
    "t_match": ("AWAITING_DOCUMENTS", "MISMATCHED"),
    "t_customs": ("DECLARED", "INSPECTION"),
    "t_e2e": ("AWAITING_DOCUMENTS", "MISMATCHED", "MATCHED", "DECLARED", "INSPECTION"),
}


class CellKey(NamedTuple):
    """One rollup cell: an hour (UTC), a metric and its code, and the parties and place where known. (A tuple:
    the match stage makes a few per record it touches, and tuples hash and compare in C.)"""

    hour: datetime
    metric: str
    code: str
    ebp_code: str
    ebc_code: str
    trade_mode: str
    port_code: str


@dataclass(frozen=True)
class Amounts:
    n: int
    amount_e5: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.n + other.n, self.amount_e5 + other.amount_e5)

    def __neg__(self) -> Amounts:
        return Amounts(-self.n, -self.amount_e5)

    def __bool__(self) -> bool:
        return bool(self.n or self.amount_e5)


Cells = dict[CellKey, Amounts]


@dataclass(frozen=True)
class PurchaseFacts:
    """What the rollups read of a match record."""

    status: str
    created_at: datetime
    ebp_code: str
    ebc_code: str | None = None
    trade_mode: str | None = None
    port_code: str | None = None
    matched_at: datetime | None = None
    settled_at: datetime | None = None
    documents_first_at: datetime | None = None
    documents_last_at: datetime | None = None
    customs_accepted_at: datetime | None = None
    tax_total: Decimal | None = None
    discrepancy_codes: tuple[str, ...] = ()
    rejection_code: str | None = None
    agency_states: tuple[tuple[str, str], ...] = ()


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def day_of(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def daily(cells: Mapping[CellKey, Amounts]) -> Cells:
    """The cells of the daily rollup: by UTC day, without the seller (a handful per day and platform)."""
    found: Cells = {}
    for key, amounts in cells.items():
        coarse = CellKey(day_of(key.hour), key.metric, key.code, key.ebp_code, "", key.trade_mode, key.port_code)
        found[coarse] = found.get(coarse, Amounts(0)) + amounts
    return {key: amounts for key, amounts in found.items() if amounts}


def to_e5(amount: Decimal) -> int:
    return int((amount * AMOUNT_SCALE).to_integral_value())


def from_e5(amount_e5: int) -> Decimal:
    return (Decimal(amount_e5) / AMOUNT_SCALE).quantize(Decimal("0.01"))


def duration_bucket(seconds: float) -> int:
    """The bucket of a duration in seconds.

    >>> duration_bucket(0.4), duration_bucket(1), duration_bucket(3), duration_bucket(10**9)
    (0, 1, 2, 23)
    """
    if seconds < 1:
        return 0
    return min(LAST_BUCKET, math.floor(math.log2(seconds)) + 1)


def bucket_bounds(bucket: int) -> tuple[float, float | None]:
    """The [lower, upper) seconds of a bucket; the last has no upper bound."""
    if bucket == 0:
        return 0.0, 1.0
    return float(2 ** (bucket - 1)), (None if bucket == LAST_BUCKET else float(2**bucket))


def contribution(facts: PurchaseFacts | None) -> Cells:
    """The cells one purchase adds to the rollups (nothing for no record)."""
    if facts is None:
        return {}
    cells: Cells = {}

    parties = (facts.ebp_code, facts.ebc_code or "", facts.trade_mode or "", facts.port_code or "")

    def add(at: datetime, metric: str, code: str, amount_e5: int = 0) -> None:
        key = CellKey(hour_of(at), metric, code, *parties)
        found = cells.get(key)
        cells[key] = Amounts(1, amount_e5) if found is None else found + Amounts(1, amount_e5)

    tax = to_e5(facts.tax_total) if facts.tax_total is not None else 0
    add(facts.created_at, "purchases", facts.status, tax)
    if facts.matched_at is not None:
        add(facts.matched_at, "matched", "")
    if facts.status == "MISMATCHED":
        for code in sorted(set(facts.discrepancy_codes)):
            add(facts.documents_last_at or facts.created_at, "mismatch", code)
    if facts.status == "REJECTED":
        add(facts.settled_at or facts.created_at, "rejection", facts.rejection_code or "")
    for agency, state in facts.agency_states:
        add(facts.created_at, "agency", f"{agency}:{state}")
    if facts.status == "CLEARED" and facts.settled_at is not None:
        add(facts.settled_at, "tax", "", tax)  # collected: the goods are released with their tax
        spans = {
            "t_match": (facts.documents_last_at, facts.matched_at),
            "t_customs": (facts.customs_accepted_at, facts.settled_at),
            "t_e2e": (facts.documents_first_at, facts.settled_at),
        }
        for measure, (start, end) in spans.items():
            if start is not None and end is not None:
                add(facts.settled_at, measure, f"{duration_bucket((end - start).total_seconds()):02d}")
    return cells


def difference(before: Cells, after: Cells) -> Cells:
    """``after - before``, without the cells that did not change."""
    changed: Cells = {}
    for key in before.keys() | after.keys():
        delta = after.get(key, Amounts(0)) + -before.get(key, Amounts(0))
        if delta:
            changed[key] = delta
    return changed


def add_cells(total: Cells, cells: Mapping[CellKey, Amounts]) -> None:
    for key, amounts in cells.items():
        total[key] = total.get(key, Amounts(0)) + amounts


def document_cells(
    accepted_at: datetime, doc_type: str, outcome: str, ebp_code: str, rejection_code: str | None
) -> Cells:
    """What one processed submission adds: the document by kind and outcome, and a refusal by its code."""
    cells: Cells = {}
    hour = hour_of(accepted_at)
    cells[CellKey(hour, "documents", f"{doc_type}:{outcome}", ebp_code, "", "", "")] = Amounts(1)
    if outcome == "rejected":
        cells[CellKey(hour, "document_rejection", rejection_code or "", ebp_code, "", "", "")] = Amounts(1)
    return cells


def suppress(n: int) -> int | None:
    """A count of purchases is shown when it is 0 or at least ``MIN_CELL``; 1 to 4 could single buyers out.

    >>> suppress(0), suppress(3), suppress(5)
    (0, None, 5)"""
    return n if n == 0 or n >= MIN_CELL else None


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q``-quantile (0 < q < 1) in seconds from bucket counts, interpolated geometrically inside its bucket
    (linearly in bucket 0); ``None`` for an empty histogram. The last bucket reports its lower bound.

    >>> percentile({1: 10}, 0.5)  # ten items in [1, 2) s: the median is about √2 s
    1.4142135623730951"""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if count <= 0:
            continue
        if seen + count >= rank:
            lower, upper = bucket_bounds(bucket)
            share = (rank - seen) / count
            if upper is None:
                return lower
            if bucket == 0:
                return lower + share * (upper - lower)
            return float(lower * (upper / lower) ** share)
        seen += count
    lower, _ = bucket_bounds(max(histogram))
    return lower


def top(counts: Iterable[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The ``limit`` largest, largest first, ties by code."""
    return sorted(counts, key=lambda item: (-item[1], item[0]))[:limit]


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def agency_states(agencies: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Each agency's answer so far (``state`` from its receipts: accepted, held, released, rejected); the
    dispatch's own status (pending, retry, dead) is the backlog's business, not an outcome."""
    found: list[tuple[str, str]] = []
    for name in sorted(agencies):
        entry = agencies[name]
        if isinstance(entry, Mapping):
            state = entry.get("state")
            if state:
                found.append((name, str(state)))
    return tuple(found)


def discrepancy_codes(discrepancies: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(d["code"]) for d in discrepancies if isinstance(d, Mapping) and d.get("code"))


# Best to worst: a declaration's supervision is counted under its strictest party's level (the one that can
# only make it stricter), the way the decision reads the levels (app/rules/supervision.py).
CREDIT_ORDER = ("advanced_certified", "certified", "regular", "dishonest", "seriously_dishonest")
DECISION_ACTIONS = ("release", "inspect", "block")


def governing_level(levels: Mapping[str, str]) -> str:
    """The worst of the parties' credit levels (unknown levels count as regular).

    >>> governing_level({"platform": "certified", "seller": "dishonest", "carrier": "regular"})
    'dishonest'"""
    ranks = [CREDIT_ORDER.index(level) if level in CREDIT_ORDER else 2 for level in levels.values()]
    return CREDIT_ORDER[max(ranks, default=2)]


def risk_cells(
    at: datetime,
    parties: tuple[str, str, str, str],
    levels: Mapping[str, str],
    action: str,
    rules: Iterable[str],
) -> Cells:
    """What one declaration's risk decision adds: the decision under its governing credit level
    (``decision`` / ``dishonest:inspect``) and each warning it raised by rule (``warning`` / ``R1``), in the
    hour of the decision. ``parties`` are (platform, seller, trade mode, port)."""
    cells: Cells = {}
    hour = hour_of(at)
    key = CellKey(hour, "decision", f"{governing_level(levels)}:{action}", *parties)
    cells[key] = Amounts(1)
    for rule in rules:
        key = CellKey(hour, "warning", rule, *parties)
        cells[key] = cells.get(key, Amounts(0)) + Amounts(1)
    return cells


def decision_counts(cells: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """``{"dishonest:inspect": 3, …}`` as level → action → count, every level and action present.

    >>> decision_counts({"regular:inspect": 2})["regular"]
    {'release': 0, 'inspect': 2, 'block': 0}"""
    found = {level: dict.fromkeys(DECISION_ACTIONS, 0) for level in CREDIT_ORDER}
    for code, n in cells.items():
        level, _, action = code.partition(":")
        if level in found and action in found[level]:
            found[level][action] += n
    return found


# An hourly series answers at most this many days; a longer period (or one with no start) is answered by day:
# 744 points still draw, and the daily rollup answers it with a few cells per day instead of one per hour.
MAX_HOURLY_DAYS = 31


def series_bucket(asked: str, start: datetime | None, end: datetime | None, now: datetime) -> str:
    """The bucket a time series is answered in: ``hour`` only over at most ``MAX_HOURLY_DAYS`` days.

    >>> from datetime import UTC
    >>> now = datetime(2026, 12, 7, tzinfo=UTC)
    >>> series_bucket("hour", None, None, now), series_bucket("hour", datetime(2026, 12, 1, tzinfo=UTC), None, now)
    ('day', 'hour')"""
    if asked != "hour":
        return asked
    if start is None:
        return "day"
    return "hour" if ((end or now) - start).total_seconds() <= MAX_HOURLY_DAYS * 86400 else "day"
