"""The statistics dashboard (统计监测): the figures of the statistics API (app/services/stats.py) for a period
and a party, as cards, tables and Apache ECharts charts, refreshed by htmx.

The page's CSP allows no inline script: the figures travel in a ``<script type="application/json">`` element
of the live part, which /static/console/dashboard.js reads to draw the charts (again after each refresh).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from app.console.catalogue import translator
from app.console.pages import SECURITY_HEADERS, Page, signed_in
from app.db import utcnow
from app.deps import ReadSessionDep
from app.rules.rollups import day_of, hour_of
from app.services import stats as stats_service
from app.services.stats import StatsFilter

router = APIRouter(prefix="/console", include_in_schema=False)
RANGES: dict[str, int | None] = {"24h": 1, "7d": 7, "30d": 30, "all": None}
REFRESH_S = 30
# The console's policy, with one allowance: ECharts (zrender) positions its canvas and tooltip with style
# attributes. Style attributes only — no <style> element, and scripts stay our own files alone.
DASHBOARD_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "style-src 'self';", "style-src 'self'; style-src-attr 'unsafe-inline';"
)


class DashboardQuery(BaseModel):
    range: Literal["24h", "7d", "30d", "all"] = "24h"
    ebpCode: str | None = Field(default=None, max_length=18, pattern=r"^[0-9A-Za-z]*$")
    ebcCode: str | None = Field(default=None, max_length=18, pattern=r"^[0-9A-Za-z]*$")

    def stats_filter(self) -> StatsFilter:
        days = RANGES[self.range]
        now = utcnow()
        # The last 24 hours by the hour; longer periods in whole UTC days (the daily rollup answers them).
        if days == 1:
            start: datetime | None = hour_of(now) - timedelta(hours=23)
        else:
            start = day_of(now) - timedelta(days=days - 1) if days else None
        return StatsFilter(start=start, ebp_code=self.ebpCode or None, ebc_code=self.ebcCode or None)

    def query_string(self) -> str:
        parts = [f"range={self.range}"]
        parts += [f"{name}={value}" for name, value in (("ebpCode", self.ebpCode), ("ebcCode", self.ebcCode)) if value]
        return "&".join(parts)


async def figures(db: ReadSessionDep, query: DashboardQuery) -> dict[str, Any]:
    f = query.stats_filter()
    bucket = "hour" if query.range == "24h" else "day"
    series = {
        metric: await stats_service.timeseries(db, f, metric, bucket)
        for metric in ("documents", "purchases", "matched", "mismatches", "tax")
    }
    return {
        "summary": await stats_service.summary(db, f),
        "series": series,
        "mismatches": await stats_service.mismatch_reasons(db, f, 10),
        "rejections": await stats_service.rejections(db, f, 10),
        "times": await stats_service.clearance_times(db, f),
        "backlog": await stats_service.backlog(db, f),
        "inspections": await stats_service.inspections_by_level(db, f),
        "warnings": await stats_service.warnings_by_rule(db, f),
        "bucket": bucket,
    }


def chart_data(found: dict[str, Any], t: Any) -> str:
    """What dashboard.js draws, labels already in the page's language. ``</`` is escaped so that no value can
    close the script element."""
    series = found["series"]
    times = found["times"]
    data = {
        "bucket": found["bucket"],
        "series": {
            name: {
                "label": t(f"dash.series.{name}"),
                "points": [[p.at.isoformat(), None if p.value is None else float(p.value)] for p in ts.points],
            }
            for name, ts in series.items()
        },
        "matchRate": found["summary"].matchRate,
        "mismatches": [[i.code, i.count] for i in found["mismatches"].items],
        "rejections": [[f"{i.code}", i.count] for i in found["rejections"].items],
        "times": [
            {
                "label": t(f"dash.measure.{m.measure}"),
                "buckets": [[_bucket_label(b.fromSeconds), b.count] for b in m.histogram],
            }
            for m in times.measures
        ],
        "backlog": [[t(f"status.{p.status}"), p.count] for p in found["backlog"].openPurchases],
        "inspections": [
            [t(f"credit.{x.level}"), None if x.inspectionRate is None else round(x.inspectionRate * 100, 2)]
            for x in found["inspections"].levels
        ],
        "warnings": [[i.code, i.count] for i in found["warnings"].items],
        "labels": {"rate": t("dash.match_rate"), "none": t("dash.no_data"), "inspected": t("dash.inspection_rate")},
    }
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def _bucket_label(seconds: float) -> str:
    """1s, 2s, … 32m, 1h, … 2d: the lower bound of a histogram bucket."""
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


async def _render(request: Request, db: ReadSessionDep, template: str) -> Response:
    page: Page = await signed_in(request)
    try:
        query = DashboardQuery.model_validate(dict(request.query_params))
    except ValidationError:
        query = DashboardQuery()
    found = await figures(db, query)
    context = {
        "query": query,
        "ranges": list(RANGES),
        "found": found,
        "chart_data": chart_data(found, translator(page.session.lang)),
        "refresh_s": REFRESH_S,
    }
    response = page.render(template, context)
    response.headers["Content-Security-Policy"] = DASHBOARD_CSP
    return response


@router.get("/dashboard")
async def dashboard(request: Request, db: ReadSessionDep) -> Response:
    return await _render(request, db, "console/dashboard.html")


@router.get("/dashboard/live")
async def dashboard_live(request: Request, db: ReadSessionDep) -> Response:
    """The figures alone, polled by htmx every ``REFRESH_S`` seconds."""
    return await _render(request, db, "console/_dashboard_live.html")
