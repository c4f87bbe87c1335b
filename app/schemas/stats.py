"""Statistics (统计监测) as the API returns them. A count of purchases or documents from 1 to 4 is ``null``
(suppressed: it could single out buyers); 0 and 5 or more are shown."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

Count = int | None
Measure = Literal["t_match", "t_customs", "t_e2e"]
SeriesMetric = Literal["documents", "purchases", "matched", "mismatches", "rejections", "tax"]


class Period(BaseModel):
    start: datetime | None = Field(alias="from", description="From this hour (UTC), or from the beginning")
    end: datetime | None = Field(alias="to", description="Before this time (UTC), or up to now")

    model_config = {"populate_by_name": True}


class StatsSummary(BaseModel):
    period: Period
    documents: dict[str, Count] = Field(description="Documents processed by the match stage, by `kind:outcome`")
    documentsTotal: Count
    purchases: dict[str, Count] = Field(description="Purchases first seen in the period, by their status now")
    purchasesTotal: Count
    matched: Count = Field(description="Purchases that matched in the period")
    matchRate: float | None = Field(description="matched / (matched + mismatched now); null when suppressed")
    mismatched: Count
    rejected: Count
    documentsRejected: Count
    taxCollected: Decimal | None = Field(description="Tax of the purchases released in the period (CNY)")


class SeriesPoint(BaseModel):
    at: datetime
    value: Decimal | int | None


class TimeSeries(BaseModel):
    metric: SeriesMetric
    bucket: Literal["hour", "day"]
    period: Period
    points: list[SeriesPoint]


class CodeCount(BaseModel):
    code: str
    source: Literal["record", "document"] = "record"
    zh: str | None = None
    en: str | None = None
    count: Count


class TopCodes(BaseModel):
    period: Period
    total: Count
    items: list[CodeCount]


class HistogramBucket(BaseModel):
    bucket: int
    fromSeconds: float
    toSeconds: float | None
    count: Count


class ClearanceTime(BaseModel):
    measure: Measure
    description: str
    count: Count = Field(description="Purchases released in the period (the histogram's total)")
    p50Seconds: float | None
    p90Seconds: float | None
    p99Seconds: float | None
    open: Count = Field(description="Purchases whose clock is still running (first seen in the period)")
    histogram: list[HistogramBucket]


class ClearanceTimes(BaseModel):
    period: Period
    measures: list[ClearanceTime]


class StageBacklogOut(BaseModel):
    stage: str
    backlog: int
    oldestAgeSeconds: float
    dead: int


class OpenPurchases(BaseModel):
    status: str
    count: Count
    oldestAgeSeconds: float | None = Field(description="Since the oldest such record last changed")


class Backlog(BaseModel):
    stages: list[StageBacklogOut]
    openPurchases: list[OpenPurchases]


class LevelInspections(BaseModel):
    level: str = Field(description="Customs credit level: the strictest of the declaration's platform, seller, carrier")
    levelZh: str
    declarations: Count = Field(description="Declarations decided in the period under this level")
    inspected: Count
    blocked: Count
    released: Count
    inspectionRate: float | None = Field(description="inspected / declarations; null when suppressed")


class InspectionsByLevel(BaseModel):
    period: Period
    declarations: Count
    inspectionRate: float | None
    levels: list[LevelInspections]
