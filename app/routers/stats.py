"""Statistics (统计监测) for officials and admins: JSON, or CSV with ``Accept: text/csv``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.deps import PrincipalDep, ReadSessionDep
from app.routers.csv_export import CSV_CONTENT, csv_response, wants_csv
from app.routers.records import IsoDateTime, _aware
from app.schemas.problems import problems
from app.schemas.stats import (
    Backlog,
    ClearanceTimes,
    InspectionsByLevel,
    SeriesMetric,
    StatsSummary,
    TimeSeries,
    TopCodes,
)
from app.services import stats as stats_service
from app.services.stats import StatsFilter

router = APIRouter(prefix="/api/v1/stats", tags=["Statistics (统计监测)"])

ERRORS = problems(401, 403, 422, 503, also={200: {"description": "The figures", "content": CSV_CONTENT}})
CSV_NOTE = (
    " Officials and admins only. A count from 1 to 4 is `null` (suppressed). `Accept: text/csv` for CSV. "
    "Periods are whole UTC hours: `from` is rounded down to its hour."
)


def stats_filter(
    principal: PrincipalDep,
    start: Annotated[IsoDateTime | None, Query(alias="from", description="From (ISO 8601 with zone)")] = None,
    end: Annotated[IsoDateTime | None, Query(alias="to", description="Before (ISO 8601 with zone)")] = None,
    ebpCode: Annotated[str | None, Query(max_length=18, description="Platform")] = None,
    ebcCode: Annotated[str | None, Query(max_length=18, description="Seller")] = None,
    tradeMode: Annotated[str | None, Query(max_length=8, description="Trade mode, e.g. 9610, 1210")] = None,
    portCode: Annotated[str | None, Query(max_length=8, description="Port (customs code of the port)")] = None,
) -> StatsFilter:
    principal.require_reader()
    return StatsFilter(_aware("from", start), _aware("to", end), ebpCode, ebcCode, tradeMode, portCode)


FilterDep = Annotated[StatsFilter, Depends(stats_filter)]


def _answer(request: Request, model: Any, columns: list[str], rows: list[list[Any]], name: str) -> Any:
    if wants_csv(request.headers.get("accept")):
        return csv_response(columns, rows, name)
    return model


@router.get(
    "/summary",
    response_model=StatsSummary,
    summary="Documents, purchases, match rate, rejections and tax of a period",
    description="Purchases are counted in the hour they were first seen, by their status now; matched in the hour "
    "they matched; tax in the hour the goods were released." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_summary",
)
async def get_summary(request: Request, f: FilterDep, session: ReadSessionDep) -> Response | StatsSummary:
    result = await stats_service.summary(session, f)
    rows: list[list[Any]] = [[f"documents.{k}", v] for k, v in result.documents.items()]
    rows += [[f"purchases.{k}", v] for k, v in result.purchases.items()]
    for name in (
        "documentsTotal",
        "purchasesTotal",
        "matched",
        "matchRate",
        "mismatched",
        "rejected",
        "documentsRejected",
        "taxCollected",
    ):
        rows.append([name, getattr(result, name)])
    return _answer(request, result, ["figure", "value"], rows, "stats-summary")  # type: ignore[no-any-return]


@router.get(
    "/timeseries",
    response_model=TimeSeries,
    summary="One figure per hour or per day (UTC)",
    description="`documents` processed, `purchases` first seen, `matched`, `mismatches` (purchases mismatched "
    "now, by the hour of their last document), `rejections`, `tax` collected (CNY). An hourly series over more "
    "than 31 days, or with no `from`, is answered by day (`bucket` in the answer says which)." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_timeseries",
)
async def get_timeseries(
    request: Request,
    f: FilterDep,
    session: ReadSessionDep,
    metric: SeriesMetric = "documents",
    bucket: Literal["hour", "day"] = "hour",
) -> Response | TimeSeries:
    result = await stats_service.timeseries(session, f, metric, bucket)
    rows = [[p.at.isoformat(), p.value] for p in result.points]
    return _answer(request, result, ["at", metric], rows, f"stats-{metric}-{bucket}")  # type: ignore[no-any-return]


def _top_rows(result: TopCodes) -> list[list[Any]]:
    return [[i.source, i.code, i.count, i.zh, i.en] for i in result.items]


@router.get(
    "/mismatch-reasons",
    response_model=TopCodes,
    summary="The most frequent reasons purchases do not match (purchases mismatched now)",
    description="Each purchase counts once per reason code it carries." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_mismatch_reasons",
)
async def get_mismatch_reasons(
    request: Request, f: FilterDep, session: ReadSessionDep, top: Annotated[int, Query(ge=1, le=100)] = 10
) -> Response | TopCodes:
    result = await stats_service.mismatch_reasons(session, f, top)
    columns = ["source", "code", "count", "zh", "en"]
    return _answer(request, result, columns, _top_rows(result), "stats-mismatch-reasons")  # type: ignore[no-any-return]


@router.get(
    "/rejections",
    response_model=TopCodes,
    summary="The most frequent rejections: purchases by return code, documents refused by problem code",
    description="`record`: the purchase was rejected (limits, an agency's `100` or negative code); `document`: "
    "the match stage refused a document (`100` with its code)." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_rejections",
)
async def get_rejections(
    request: Request, f: FilterDep, session: ReadSessionDep, top: Annotated[int, Query(ge=1, le=100)] = 10
) -> Response | TopCodes:
    result = await stats_service.rejections(session, f, top)
    columns = ["source", "code", "count", "zh", "en"]
    return _answer(request, result, columns, _top_rows(result), "stats-rejections")  # type: ignore[no-any-return]


@router.get(
    "/clearance-times",
    response_model=ClearanceTimes,
    summary="Clearance times as p50 / p90 / p99 and a histogram, open items apart",
    description="`t_match` last document → matched, `t_customs` customs accepted → released, `t_e2e` first "
    "document → released, over the purchases released in the period (WCO Time Release Study practice). "
    "Buckets are fixed and log-scale (bucket b ≥ 1 holds [2^(b-1), 2^b) seconds), so percentiles are "
    "estimates within their bucket." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_clearance_times",
)
async def get_clearance_times(request: Request, f: FilterDep, session: ReadSessionDep) -> Response | ClearanceTimes:
    result = await stats_service.clearance_times(session, f)
    columns = [
        "measure",
        "bucket",
        "fromSeconds",
        "toSeconds",
        "count",
        "p50Seconds",
        "p90Seconds",
        "p99Seconds",
        "open",
    ]
    rows = [
        [m.measure, b.bucket, b.fromSeconds, b.toSeconds, b.count, m.p50Seconds, m.p90Seconds, m.p99Seconds, m.open]
        for m in result.measures
        for b in m.histogram
    ]
    return _answer(request, result, columns, rows, "stats-clearance-times")  # type: ignore[no-any-return]


@router.get(
    "/backlog",
    response_model=Backlog,
    summary="Each stage's backlog and the age of its oldest item; purchases not yet settled",
    description="Stages from their queues (as `/readyz`); open purchases counted from the rollups (with the "
    "filters), the age of the oldest from the records." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_backlog",
)
async def get_backlog(request: Request, f: FilterDep, session: ReadSessionDep) -> Response | Backlog:
    result = await stats_service.backlog(session, f)
    rows: list[list[Any]] = [["stage", s.stage, s.backlog, s.oldestAgeSeconds, s.dead] for s in result.stages]
    rows += [["purchases", p.status, p.count, p.oldestAgeSeconds, None] for p in result.openPurchases]
    columns = ["kind", "name", "count", "oldestAgeSeconds", "dead"]
    return _answer(request, result, columns, rows, "stats-backlog")  # type: ignore[no-any-return]


@router.get(
    "/inspections",
    response_model=InspectionsByLevel,
    summary="Inspection rate by credit level: declarations decided, inspected, blocked, released",
    description="Each declaration counts under the strictest credit level among its platform, seller and "
    "carrier (the level whose profile applied), in the hour it was decided (docs/risk.md)." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_inspections",
)
async def get_inspections(request: Request, f: FilterDep, session: ReadSessionDep) -> Response | InspectionsByLevel:
    result = await stats_service.inspections_by_level(session, f)
    columns = ["level", "levelZh", "declarations", "inspected", "blocked", "released", "inspectionRate"]
    rows = [
        [x.level, x.levelZh, x.declarations, x.inspected, x.blocked, x.released, x.inspectionRate]
        for x in result.levels
    ]
    rows.append(["all", "全部", result.declarations, None, None, None, result.inspectionRate])
    return _answer(request, result, columns, rows, "stats-inspections")  # type: ignore[no-any-return]


@router.get(
    "/warnings",
    response_model=TopCodes,
    summary="Risk warnings raised, by rule (R1-R8)",
    description="Warnings raised by declarations decided in the period, by rule, whatever officials did with "
    "them since (the queue: `GET /api/v1/risk/warnings`)." + CSV_NOTE,
    responses=ERRORS,
    operation_id="stats_warnings",
)
async def get_warnings(request: Request, f: FilterDep, session: ReadSessionDep) -> Response | TopCodes:
    result = await stats_service.warnings_by_rule(session, f)
    columns = ["source", "code", "count", "zh", "en"]
    return _answer(request, result, columns, _top_rows(result), "stats-warnings")  # type: ignore[no-any-return]
