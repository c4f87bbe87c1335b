"""The statistics officials read, from the rollups (never a scan of the records), each cell suppressed under
``MIN_CELL`` (app/rules/rollups.py). Periods are whole hours in UTC: a cell is in the period when its hour
starts at or after ``from`` and before ``to``. A question the daily rollup can answer exactly (whole UTC days,
no seller, not by hour) reads it: a few cells per day and platform instead of one per hour and seller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import MatchRecord, StatsRollup, StatsRollupDaily
from app.models.stats import StatsRollupColumns
from app.rules.credit import LEVEL_NAMES_ZH, CreditLevel
from app.rules.reason_codes import REASON_CODES
from app.rules.risk import RULES
from app.rules.rollups import (
    DURATIONS,
    LAST_BUCKET,
    OPEN_CLOCKS,
    bucket_bounds,
    day_of,
    decision_counts,
    from_e5,
    hour_of,
    percentile,
    rate,
    series_bucket,
    suppress,
    top,
)
from app.schemas.stats import (
    Backlog,
    ClearanceTime,
    ClearanceTimes,
    CodeCount,
    HistogramBucket,
    InspectionsByLevel,
    LevelInspections,
    OpenPurchases,
    Period,
    SeriesMetric,
    SeriesPoint,
    StageBacklogOut,
    StatsSummary,
    TimeSeries,
    TopCodes,
)
from app.services.backlog import stage_backlogs

OPEN_STATUSES = ("AWAITING_DOCUMENTS", "MISMATCHED", "MATCHED", "DECLARED", "INSPECTION")
MEASURES = {
    "t_match": "last document accepted → matched (match stage)",
    "t_customs": "inventory accepted by customs → released",
    "t_e2e": "first document accepted → released",
}
SOURCES: dict[str, Literal["record", "document"]] = {"rejection": "record", "document_rejection": "document"}
# Which rollup cells a time series reads: (metric, code or None for all codes, sums the amount)
SERIES: dict[str, tuple[str, str | None, bool]] = {
    "documents": ("documents", None, False),
    "purchases": ("purchases", None, False),
    "matched": ("matched", None, False),
    "mismatches": ("mismatch", None, False),
    "rejections": ("rejection", None, False),
    "tax": ("tax", None, True),
}


@dataclass(frozen=True)
class StatsFilter:
    start: datetime | None = None
    end: datetime | None = None
    ebp_code: str | None = None
    ebc_code: str | None = None
    trade_mode: str | None = None
    port_code: str | None = None

    def period(self) -> Period:
        return Period(start=self.start, end=self.end)

    def table(self, hourly: bool = False) -> type[StatsRollupColumns]:
        """The daily rollup when it gives the same answer: whole UTC days, no seller, not asked by hour."""
        whole_days = all(at is None or hour_of(at) == day_of(at) for at in (self.start, self.end))
        return StatsRollup if hourly or self.ebc_code is not None or not whole_days else StatsRollupDaily

    def clauses(self, model: type[StatsRollupColumns] = StatsRollup) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.start is not None:
            found.append(model.hour >= hour_of(self.start))
        if self.end is not None:
            found.append(model.hour < self.end)
        for column, value in (
            (model.ebp_code, self.ebp_code),
            (model.ebc_code, self.ebc_code),
            (model.trade_mode, self.trade_mode),
            (model.port_code, self.port_code),
        ):
            if value is not None:
                found.append(column == value)
        return found


async def _by_code(
    session: AsyncSession, f: StatsFilter, metrics: Sequence[str]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(metric, code) → (n, amount_e5) summed over the filter."""
    model = f.table()
    rows = await session.execute(
        select(model.metric, model.code, func.sum(model.n), func.sum(model.amount_e5))
        .where(model.metric.in_(metrics), *f.clauses(model))
        .group_by(model.metric, model.code)
    )
    return {(metric, code): (int(n or 0), int(amount or 0)) for metric, code, n, amount in rows}


def _metric(cells: dict[tuple[str, str], tuple[int, int]], metric: str) -> dict[str, int]:
    return {code: n for (m, code), (n, _) in cells.items() if m == metric and n}


def _amount(cells: dict[tuple[str, str], tuple[int, int]], metric: str) -> tuple[int, int]:
    n = sum(v[0] for (m, _), v in cells.items() if m == metric)
    return n, sum(v[1] for (m, _), v in cells.items() if m == metric)


async def summary(session: AsyncSession, f: StatsFilter) -> StatsSummary:
    cells = await _by_code(session, f, ("documents", "purchases", "matched", "rejection", "document_rejection", "tax"))
    documents = _metric(cells, "documents")
    purchases = _metric(cells, "purchases")
    matched = sum(_metric(cells, "matched").values())
    mismatched = purchases.get("MISMATCHED", 0)
    taxed, tax_e5 = _amount(cells, "tax")
    shown_rate = suppress(matched) is not None and suppress(mismatched) is not None
    return StatsSummary(
        period=f.period(),
        documents={code: suppress(n) for code, n in sorted(documents.items())},
        documentsTotal=suppress(sum(documents.values())),
        purchases={code: suppress(n) for code, n in sorted(purchases.items())},
        purchasesTotal=suppress(sum(purchases.values())),
        matched=suppress(matched),
        matchRate=rate(matched, matched + mismatched) if shown_rate else None,
        mismatched=suppress(mismatched),
        rejected=suppress(sum(_metric(cells, "rejection").values())),
        documentsRejected=suppress(sum(_metric(cells, "document_rejection").values())),
        taxCollected=from_e5(tax_e5) if suppress(taxed) is not None else None,
    )


async def timeseries(session: AsyncSession, f: StatsFilter, metric: SeriesMetric, bucket: str) -> TimeSeries:
    """One value per hour or day; an hourly series over a long period is answered by day (``series_bucket``)."""
    bucket = series_bucket(bucket, f.start, f.end, utcnow())
    rollup_metric, code, amount = SERIES[metric]
    model = f.table(hourly=bucket == "hour")
    query = select(model.hour, func.sum(model.n), func.sum(model.amount_e5)).where(
        model.metric == rollup_metric, *f.clauses(model)
    )
    if code is not None:
        query = query.where(model.code == code)
    sums: dict[datetime, tuple[int, int]] = {}
    for hour, n, amount_e5 in await session.execute(query.group_by(model.hour)):
        at = hour if bucket == "hour" else hour.replace(hour=0)
        previous = sums.get(at, (0, 0))
        sums[at] = (previous[0] + int(n or 0), previous[1] + int(amount_e5 or 0))
    points: list[SeriesPoint] = []
    for at in sorted(sums):
        n, amount_e5 = sums[at]
        shown = suppress(n)
        value: Decimal | int | None = shown if not amount else (from_e5(amount_e5) if shown is not None else None)
        points.append(SeriesPoint(at=at, value=value))
    return TimeSeries(metric=metric, bucket="day" if bucket == "day" else "hour", period=f.period(), points=points)


async def mismatch_reasons(session: AsyncSession, f: StatsFilter, limit: int) -> TopCodes:
    counts = _metric(await _by_code(session, f, ("mismatch",)), "mismatch")
    items = []
    for code, n in top(counts.items(), limit):
        reason = REASON_CODES.get(code)
        items.append(
            CodeCount(code=code, zh=reason.zh if reason else None, en=reason.en if reason else None, count=suppress(n))
        )
    return TopCodes(period=f.period(), total=suppress(sum(counts.values())), items=items)


async def rejections(session: AsyncSession, f: StatsFilter, limit: int) -> TopCodes:
    cells = await _by_code(session, f, ("rejection", "document_rejection"))
    counts = [((SOURCES[metric], code), n) for (metric, code), (n, _) in cells.items() if n]
    ranked = sorted(counts, key=lambda item: (-item[1], item[0]))[:limit]
    items = [CodeCount(code=code, source=source, count=suppress(n)) for (source, code), n in ranked]
    return TopCodes(period=f.period(), total=suppress(sum(n for _, n in counts)), items=items)


async def clearance_times(session: AsyncSession, f: StatsFilter) -> ClearanceTimes:
    cells = await _by_code(session, f, (*DURATIONS, "purchases"))
    statuses = _metric(cells, "purchases")
    measures = []
    for measure in DURATIONS:
        histogram = {int(code): n for code, n in _metric(cells, measure).items()}
        total = sum(histogram.values())
        shown = suppress(total) is not None

        def quantile(q: float, histogram: dict[int, int] = histogram, shown: bool = shown) -> float | None:
            value = percentile(histogram, q) if shown else None
            return round(value, 3) if value is not None else None

        buckets = []
        for b in range(LAST_BUCKET + 1):
            lower, upper = bucket_bounds(b)
            buckets.append(
                HistogramBucket(bucket=b, fromSeconds=lower, toSeconds=upper, count=suppress(histogram.get(b, 0)))
            )
        measures.append(
            ClearanceTime(
                measure=measure,
                description=MEASURES[measure],
                count=suppress(total),
                p50Seconds=quantile(0.5),
                p90Seconds=quantile(0.9),
                p99Seconds=quantile(0.99),
                open=suppress(sum(statuses.get(s, 0) for s in OPEN_CLOCKS[measure])),
                histogram=buckets,
            )
        )
    return ClearanceTimes(period=f.period(), measures=measures)


async def backlog(session: AsyncSession, f: StatsFilter) -> Backlog:
    """Each stage's queue (from the queues themselves) and the purchases not yet settled (counts from the
    rollups; the age of the oldest from the records' (status, updated_at) index, one probe per status)."""
    now = utcnow()
    stages = [
        StageBacklogOut(stage=s.stage, backlog=s.backlog, oldestAgeSeconds=s.oldest_age_s, dead=s.dead)
        for s in await stage_backlogs(session)
    ]
    statuses = _metric(await _by_code(session, f, ("purchases",)), "purchases")
    open_purchases = []
    for status in OPEN_STATUSES:
        oldest: Any = await session.scalar(
            select(MatchRecord.updated_at).where(MatchRecord.status == status).order_by(MatchRecord.updated_at).limit(1)
        )
        age = round(max(0.0, (now - oldest).total_seconds()), 3) if oldest is not None else None
        open_purchases.append(
            OpenPurchases(status=status, count=suppress(statuses.get(status, 0)), oldestAgeSeconds=age)
        )
    return Backlog(stages=stages, openPurchases=open_purchases)


async def inspections_by_level(session: AsyncSession, f: StatsFilter) -> InspectionsByLevel:
    """Declarations decided in the period by the governing credit level, and the share inspected: what the
    supervision profiles promise, as it came out (信用等级从劣到优、监管力度从严到松)."""
    counts = decision_counts(_metric(await _by_code(session, f, ("decision",)), "decision"))
    levels = []
    for level, actions in counts.items():
        total = sum(actions.values())
        shown = suppress(total) is not None and suppress(actions["inspect"]) is not None
        levels.append(
            LevelInspections(
                level=level,
                levelZh=LEVEL_NAMES_ZH[CreditLevel(level)],
                declarations=suppress(total),
                inspected=suppress(actions["inspect"]),
                blocked=suppress(actions["block"]),
                released=suppress(actions["release"]),
                inspectionRate=rate(actions["inspect"], total) if shown else None,
            )
        )
    total = sum(sum(a.values()) for a in counts.values())
    inspected = sum(a["inspect"] for a in counts.values())
    shown = suppress(total) is not None and suppress(inspected) is not None
    return InspectionsByLevel(
        period=f.period(),
        declarations=suppress(total),
        inspectionRate=rate(inspected, total) if shown else None,
        levels=levels,
    )


async def warnings_by_rule(session: AsyncSession, f: StatsFilter) -> TopCodes:
    """Warnings raised in the period, by rule (each rule a purchase broke counts once per reason)."""
    counts = _metric(await _by_code(session, f, ("warning",)), "warning")
    items = []
    for rule, n in sorted(counts.items()):
        zh, en = RULES.get(rule, (None, None))
        items.append(CodeCount(code=rule, zh=zh, en=en, count=suppress(n)))
    return TopCodes(period=f.period(), total=suppress(sum(counts.values())), items=items)
