"""Risk counters, kept as purchases are declared, in the matcher's transaction (one per micro-batch).

Each purchase adds, for its keyed buyer ID, normalised address, telephone and platform, one ``risk_link`` row
per pair seen together in a time bucket (``INSERT … ON CONFLICT DO NOTHING``) and one to its hourly order
count (``INSERT … ON CONFLICT DO UPDATE SET count = count + n``). Then one query per table reads, for the
subjects of this batch only, the distinct counts over the window. No scan of history per purchase, and no
read-modify-write: two matchers adding to the same counter at once both count. (Under READ COMMITTED each
sees the other's rows once it commits: a rule may fire one purchase late when two batches race, never lose a
count.)
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import Enterprise, RiskCount, RiskLink
from app.rules.credit import CreditLevel, Profiles
from app.rules.identity import normalise_phone
from app.rules.risk import (
    PurchaseSignals,
    Thresholds,
    Warning,
    median_price,
    normalise_address,
    price_bucket,
    subject_key,
    warnings_for,
)
from app.rules.supervision import Decision, decide
from app.schemas.documents import OrderIn
from app.services.credit import current_profiles

DAY_S, HOUR_S = 86_400, 3_600
# kind: (subject field, other field, bucket size in seconds, window in seconds — None: SW_RISK_WINDOW_DAYS)
LINK_KINDS: dict[str, tuple[str, str, int, int | None]] = {
    "addr_id": ("address", "buyer", DAY_S, None),  # R1
    "id_addr": ("buyer", "address", DAY_S, None),  # R2
    "phone_id": ("phone", "buyer", DAY_S, None),  # R3
    "id_platform": ("buyer", "platform", HOUR_S, DAY_S),  # R4 (platforms in 24 h)
    # R7: the subject is the (platform, payment second) itself; the bucket is the day it was counted, and two
    # days cover a payment matched some hours after it was made (a payment matched later counts on its own).
    "paysec_id": ("pay_second", "buyer", DAY_S, 2 * DAY_S),
}
ORDERS_OF_ID = "id_orders"  # R4 (orders in 24 h), hourly buckets
PRICES = "item_price"  # R6: a price histogram per goods record (bucket: price_bucket, no time window)


@dataclass(frozen=True)
class Observation:
    """One purchase as the counters see it: keyed hashes only."""

    buyer: str
    address: str
    phone: str
    platform: str
    prices: tuple[tuple[str, Decimal], ...] = ()  # (goods record key, unit price) per order line
    pay_second: str | None = None  # the platform and the payment's payTime (to the second); None: not counted


@dataclass(frozen=True)
class Counts:
    ids_at_address: int
    addresses_of_id: int
    ids_at_phone: int
    orders_of_id_day: int
    platforms_of_id_day: int
    price_ratio: float | None = None
    ids_at_pay_second: int = 1


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        ids_per_address=settings.risk_ids_per_address,
        addresses_per_id=settings.risk_addresses_per_id,
        ids_per_phone=settings.risk_ids_per_phone,
        orders_per_id_day=settings.risk_orders_per_id_day,
        platforms_per_id_day=settings.risk_platforms_per_id_day,
        quota_share=settings.risk_quota_share,
        price_share=settings.risk_price_share,
        price_min_samples=settings.risk_price_min_samples,
        ids_per_pay_second=settings.risk_ids_per_pay_second,
    )


def window_s(kind: str, window_days: int) -> int:
    """How far back a link kind is read."""
    window = LINK_KINDS[kind][3]
    return window_days * DAY_S if window is None else window


def observe(order: OrderIn, secret: bytes, pay_time: str | None = None) -> Observation:
    """``pay_time``: the payment's payTime (CEB wall clock, to the second) for R7."""
    return Observation(
        buyer=subject_key(secret, "id", order.buyerIdNumber.strip().upper()),
        address=subject_key(secret, "address", normalise_address(order.consigneeAddress)),
        phone=subject_key(secret, "phone", normalise_phone(order.consigneeTelephone)),
        platform=order.ebpCode,
        prices=tuple(
            (subject_key(secret, "goods", f"{order.ebcCode}/{line.itemNo}"), line.price)
            for line in order.orderList
            if line.itemNo
        ),
        pay_second=None if pay_time is None else subject_key(secret, "paysec", f"{order.ebpCode}/{pay_time}"),
    )


def dialect_insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _add_counts(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count: an increment without a read."""
    statement = dialect_insert(session)(RiskCount)
    return statement.on_conflict_do_update(
        index_elements=["kind", "subject", "bucket"], set_={"count": RiskCount.count + statement.excluded.count}
    )


async def count_purchases(
    session: AsyncSession,
    observations: Sequence[Observation],
    now: datetime,
    window_days: int,
    min_price_samples: int = 20,
) -> list[Counts]:
    """Add the purchases to the counters and read each one's counts (this batch included)."""
    if not observations:
        return []
    epoch = int(now.timestamp())
    insert = dialect_insert(session)
    links = sorted(
        {
            (kind, getattr(o, subject), epoch // size, getattr(o, other))
            for o in observations
            for kind, (subject, other, size, _window) in LINK_KINDS.items()
            if getattr(o, subject) is not None
        }
    )
    # executemany of one cached statement (SQLAlchemy batches it into multi-row INSERTs): compiling a fresh
    # multi-VALUES statement per batch cost more than the database work.
    await session.execute(
        insert(RiskLink).on_conflict_do_nothing(),
        [{"kind": k, "subject": s, "bucket": b, "other": x} for k, s, b, x in links],
    )
    hour = epoch // HOUR_S
    orders = Counter(o.buyer for o in observations)
    await session.execute(
        _add_counts(session),
        [{"kind": ORDERS_OF_ID, "subject": s, "bucket": hour, "count": n} for s, n in sorted(orders.items())],
    )
    ratios = await _price_ratios(session, observations, min_price_samples)
    distinct = await _distinct_counts(session, observations, epoch, window_days)
    day_orders = dict(
        (
            await session.execute(
                select(RiskCount.subject, func.sum(RiskCount.count))
                .where(
                    RiskCount.kind == ORDERS_OF_ID,
                    RiskCount.subject.in_(sorted(orders)),
                    RiskCount.bucket > hour - 24,
                )
                .group_by(RiskCount.subject)
            )
        ).all()
    )
    return [
        Counts(
            ids_at_address=distinct.get(("addr_id", o.address), 0),
            addresses_of_id=distinct.get(("id_addr", o.buyer), 0),
            ids_at_phone=distinct.get(("phone_id", o.phone), 0),
            orders_of_id_day=int(day_orders.get(o.buyer, 0)),
            platforms_of_id_day=distinct.get(("id_platform", o.buyer), 0),
            price_ratio=ratio,
            ids_at_pay_second=distinct.get(("paysec_id", o.pay_second), 1) if o.pay_second is not None else 1,
        )
        for o, ratio in zip(observations, ratios, strict=True)
    ]


async def _price_ratios(
    session: AsyncSession, observations: Sequence[Observation], min_samples: int
) -> list[float | None]:
    """Add the batch's unit prices to their goods records' histograms, read those histograms back (one query)
    and give each purchase its lowest price / median ratio."""
    seen = Counter((item, price_bucket(price)) for o in observations for item, price in o.prices)
    if not seen:
        return [None] * len(observations)
    await session.execute(
        _add_counts(session),
        [{"kind": PRICES, "subject": item, "bucket": b, "count": n} for (item, b), n in sorted(seen.items())],
    )
    histograms: dict[str, dict[int, int]] = {}
    rows = await session.execute(
        select(RiskCount.subject, RiskCount.bucket, RiskCount.count).where(
            RiskCount.kind == PRICES, RiskCount.subject.in_(sorted({item for item, _ in seen}))
        )
    )
    for item, bucket, n in rows:
        histograms.setdefault(item, {})[bucket] = n
    medians = {item: median_price(h, min_samples) for item, h in histograms.items()}
    ratios: list[float | None] = []
    for o in observations:
        known = [float(price) / m for item, price in o.prices if (m := medians.get(item))]
        ratios.append(min(known) if known else None)
    return ratios


async def _distinct_counts(
    session: AsyncSession, observations: Sequence[Observation], epoch: int, window_days: int
) -> dict[tuple[str, str], int]:
    """Distinct partners per (kind, subject) over each kind's window, for this batch's subjects: one query."""
    clauses = []
    for kind, (subject, _other, size, _window) in LINK_KINDS.items():
        subjects = sorted({s for o in observations if (s := getattr(o, subject)) is not None})
        if not subjects:
            continue
        clauses.append(
            and_(
                RiskLink.kind == kind,
                RiskLink.subject.in_(subjects),
                RiskLink.bucket > (epoch - window_s(kind, window_days)) // size,
            )
        )
    rows = await session.execute(
        select(RiskLink.kind, RiskLink.subject, func.count(func.distinct(RiskLink.other)))
        .where(or_(*clauses))
        .group_by(RiskLink.kind, RiskLink.subject)
    )
    return {(kind, subject): int(n) for kind, subject, n in rows}


async def credit_levels(session: AsyncSession, codes: Sequence[str]) -> dict[str, CreditLevel]:
    """The current level of each enterprise named (unknown codes: regular)."""
    rows = await session.execute(
        select(Enterprise.code, Enterprise.credit_level).where(Enterprise.code.in_(sorted(set(codes))))
    )
    return {code: CreditLevel(level) for code, level in rows}


@dataclass
class Supervisor:
    """What the declare stage needs to decide a batch: the parties' levels, the profiles and the counts."""

    settings: Settings
    levels: dict[str, CreditLevel]
    profiles: Profiles
    counts: list[Counts]

    def decide(
        self, index: int, record_id: str, order: OrderIn, carrier: str, quota_used: Decimal
    ) -> tuple[Decision, list[Warning]]:
        c = self.counts[index]
        signals = PurchaseSignals(
            c.ids_at_address,
            c.addresses_of_id,
            c.ids_at_phone,
            c.orders_of_id_day,
            c.platforms_of_id_day,
            quota_used,
            self.settings.annual_limit,
            c.price_ratio,
            c.ids_at_pay_second,
        )
        warnings = warnings_for(signals, thresholds(self.settings))
        parties = {"platform": order.ebpCode, "seller": order.ebcCode, "carrier": carrier}
        levels = {party: self.levels.get(code, CreditLevel.REGULAR) for party, code in parties.items()}
        decision = decide(
            record_id, levels, self.profiles, warnings, self.settings.risk_seed, self.settings.risk_inspect_on_warning
        )
        return decision, warnings


async def supervisor(
    session: AsyncSession, settings: Settings, purchases: Sequence[tuple[OrderIn, str, str]], now: datetime
) -> Supervisor:
    """Count the batch's purchases ((order, carrier code, payTime) each) and load what deciding them needs."""
    secret = settings.risk_id_secret.get_secret_value().encode()
    observed = [observe(o, secret, pay_time) for o, _, pay_time in purchases]
    counts = await count_purchases(session, observed, now, settings.risk_window_days, settings.risk_price_min_samples)
    codes = [code for o, carrier, _ in purchases for code in (o.ebpCode, o.ebcCode, carrier)]
    return Supervisor(settings, await credit_levels(session, codes), await current_profiles(session, settings), counts)


def warning_rows(
    record_id: uuid.UUID, order: OrderIn, carrier: str, warnings: Sequence[Warning], now: datetime
) -> list[dict[str, Any]]:
    """The officials' queue rows of a declaration's warnings (written with the batch)."""
    return [
        {
            "record_id": record_id,
            "rule": w.rule,
            "ebp_code": order.ebpCode,
            "ebc_code": order.ebcCode,
            "logistics_code": carrier,
            "detail": {"zh": w.zh, "en": w.en, "value": w.value, "threshold": w.threshold},
            "status": "open",
            "note": None,
            "handled_by": None,
            "created_at": now,
            "updated_at": now,
        }
        for w in warnings
    ]


async def prune_counters(session: AsyncSession, now: datetime, window_days: int) -> int:
    """Delete the counter rows no window reads any more: day links older than the window, hour links and
    hourly order counts older than a day (price histograms have no window and stay). Returns the rows deleted."""
    epoch = int(now.timestamp())
    deleted = 0
    for kind, (_subject, _other, size, _window) in LINK_KINDS.items():
        result = await session.execute(
            delete(RiskLink).where(
                RiskLink.kind == kind, RiskLink.bucket <= (epoch - window_s(kind, window_days)) // size
            )
        )
        deleted += result.rowcount or 0  # type: ignore[attr-defined]
    result = await session.execute(
        delete(RiskCount).where(RiskCount.kind == ORDERS_OF_ID, RiskCount.bucket <= (epoch - DAY_S) // HOUR_S)
    )
    return deleted + (result.rowcount or 0)  # type: ignore[attr-defined]
