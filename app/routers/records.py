"""Match records: the three-document exchange records officials and enterprises look up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator

from app.deps import PrincipalDep, SearchSessionmakerDep, SessionDep, SettingsDep
from app.errors import Unprocessable
from app.routers.csv_export import CSV_CONTENT, csv_stream, wants_csv
from app.routers.messages import XML_RESPONSE, prefers_xml
from app.schemas.problems import problems
from app.schemas.records import DeclarationOut, RecordDetail, RecordPage, RecordStatusName
from app.services import records as record_service
from app.services.inventory_signing import rendered_inventory_message
from app.services.records import RecordFilter
from app.services.records_export import EXPORT_COLUMNS, export_pages

router = APIRouter(prefix="/api/v1/records", tags=["Records (三单交换记录)"])


def _not_a_number(value: Any) -> Any:
    # Pydantic would read "1700000000" or "0.5" as seconds since 1970; the parameters are ISO 8601 date-times.
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("must be an ISO 8601 date-time with a zone, e.g. 2026-11-23T08:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number)]


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Unprocessable(
            f"{name} needs a time zone, e.g. 2026-11-23T08:00:00Z",
            errors=[{"path": name, "message": "timezone required", "type": "timezone_aware"}],
        )
    return value


def record_filter(
    status: RecordStatusName | None = None,
    ebpCode: Annotated[str | None, Query(max_length=18)] = None,
    ebcCode: Annotated[str | None, Query(max_length=18)] = None,
    orderNo: Annotated[str | None, Query(max_length=60)] = None,
    payTransactionId: Annotated[str | None, Query(max_length=60)] = None,
    logisticsNo: Annotated[str | None, Query(max_length=60)] = None,
    buyerIdNumber: Annotated[str | None, Query(max_length=60)] = None,
    createdFrom: Annotated[IsoDateTime | None, Query(description="Created at or after (ISO 8601 with zone)")] = None,
    createdTo: Annotated[IsoDateTime | None, Query(description="Created before (ISO 8601 with zone)")] = None,
    updatedSince: Annotated[IsoDateTime | None, Query(description="Changed at or after (ISO 8601 with zone)")] = None,
) -> RecordFilter:
    return RecordFilter(
        status=status,
        ebp_code=ebpCode,
        ebc_code=ebcCode,
        order_no=orderNo,
        pay_transaction_id=payTransactionId,
        logistics_no=logisticsNo,
        buyer_id_number=buyerIdNumber,
        created_from=_aware("createdFrom", createdFrom),
        created_to=_aware("createdTo", createdTo),
        updated_since=_aware("updatedSince", updatedSince),
    )


RecordFilterDep = Annotated[RecordFilter, Depends(record_filter)]
EXPORT_NOTE = (
    "CSV (UTF-8 with BOM), streamed: every record the filters find that the caller may read, oldest change "
    "first, whatever their number; buyer ID numbers masked as the JSON masks them."
)


@router.get(
    "",
    response_model=RecordPage,
    summary="Find records by any key",
    description="Filters combine with AND. Oldest change first; follow `nextCursor` for the next page. "
    "An enterprise sees only records it is party to. With `Accept: text/csv`: " + EXPORT_NOTE,
    responses=problems(401, 422, 503, also={200: {"description": "A page of records", "content": CSV_CONTENT}}),
    operation_id="list_records",
)
async def list_records(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    found: RecordFilterDep,
    sessionmaker: SearchSessionmakerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response | RecordPage:
    if wants_csv(request.headers.get("accept")):
        return csv_stream(
            EXPORT_COLUMNS, export_pages(sessionmaker, principal, found, settings.page_size_max), "records"
        )
    async with sessionmaker() as session, session.begin():
        return await record_service.list_records(session, principal, found, min(limit, settings.page_size_max), cursor)


@router.get(
    "/export",
    response_class=Response,
    summary="Export a record search as CSV",
    description=EXPORT_NOTE + " The same filters as `GET /api/v1/records`.",
    responses=problems(401, 422, 503, also={200: {"description": "The records", "content": CSV_CONTENT}}),
    operation_id="export_records",
)
async def export_records(
    principal: PrincipalDep, settings: SettingsDep, found: RecordFilterDep, sessionmaker: SearchSessionmakerDep
) -> Response:
    return csv_stream(EXPORT_COLUMNS, export_pages(sessionmaker, principal, found, settings.page_size_max), "records")


@router.get(
    "/{record_id}",
    response_model=RecordDetail,
    summary="One record with its documents, discrepancies and timeline",
    responses=problems(401, 404, 422, 503),
    operation_id="get_record",
)
async def get_record(record_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> RecordDetail:
    return await record_service.get_record(session, principal, record_id)


@router.get(
    "/{record_id}/declaration",
    response_model=DeclarationOut,
    summary="The record's declaration: the inventory (清单) and its tax; as CEB621 with Accept: application/xml",
    description="JSON by default. With `Accept: application/xml`, the inventory as a one-record `CEB621Message` "
    "signed by the service (enveloped `ds:Signature`, SM2-SM3 by default; docs/xml.md#signatures) and checked "
    "against CEB621.xsd, signature included; the message guid is the same on every read.",
    responses=problems(
        401,
        404,
        422,
        503,
        also={200: {"description": "The declaration", "content": {"application/xml": {"schema": {"type": "string"}}}}},
    ),
    operation_id="get_declaration",
)
async def get_declaration(
    record_id: uuid.UUID, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    declaration = await record_service.get_declaration(session, principal, record_id)
    if prefers_xml(request.headers.get("accept")):
        message = rendered_inventory_message(record_id, declaration.inventory, request.app.state.settings)
        return Response(message, media_type=XML_RESPONSE)
    return JSONResponse(declaration.model_dump(mode="json"))


@router.get(
    "/{record_id}/receipts/{kind}",
    response_class=Response,
    summary="The record's receipts of one kind as their CEB message, in the order they happened",
    description=(
        "`order`, `payment`, `waybill`: a `CEB312Message` / `CEB412Message` / `CEB512Message` with, for every "
        "submission of the record's document of that type, its acceptance (`2`) and then its result (`120`, "
        "or the negative code of a refusal), each with its own `returnTime`. `inventory`: a `CEB622Message` "
        "with customs' answers to the inventory (`120`, `399`, `500`, `800` …). Only what the caller may read."
    ),
    responses=problems(
        401,
        404,
        422,
        503,
        also={200: {"description": "The receipts", "content": {"application/xml": {"schema": {"type": "string"}}}}},
    ),
    operation_id="get_record_receipts",
)
async def get_record_receipts(
    record_id: uuid.UUID,
    kind: Literal["order", "payment", "waybill", "inventory"],
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    body = await record_service.receipts_xml(session, principal, record_id, kind)
    return Response(body, media_type=XML_RESPONSE)
