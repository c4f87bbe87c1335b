"""Cancels (撤销, CEB623) and returns (退货, CEB625) of declared inventories, filed by the declarant."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from app.ceb.after_release import render_request_receipts
from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.routers.messages import XML_RESPONSE, prefers_xml
from app.rules.after_release import RequestKind
from app.schemas.after_release import InventoryCancelIn, InventoryRequestOut, InventoryReturnIn
from app.schemas.problems import problems
from app.services import after_release as service
from app.services.request_views import receipt_rows, request_out

router = APIRouter(prefix="/api/v1", tags=["Cancels and returns (撤销 CEB623, 退货 CEB625)"])

_FILED = (
    "Filed: customs is sent the signed {message} (with its XSD checked) by the dispatcher; its answer "
    "({receipt}: `120` `399` approved, `100` refused) follows on this request (GET it), on the record's timeline "
    "and in the feed (`agency_receipt` with `message` {receipt}, then `status_changed`)."
)
_REFUSED = (
    "Refused before customs, with the reason code (docs/reason-codes.md): 404 RECORD_NOT_FOUND (no such "
    "purchase, or not yours); 403 NOT_AUTHORISED_FOR_ENTERPRISE (a party that is not the declarant); 409 "
    "INVENTORY_NOT_DECLARED, INVENTORY_ALREADY_CANCELLED, INVENTORY_ALREADY_RETURNED, REQUEST_PENDING, "
    "INVENTORY_NOT_RELEASED, RETURN_PERIOD_EXPIRED; 422 REQUEST_DIFFERS_FROM_INVENTORY, RETURN_LINE_NOT_FOUND, "
    "RETURN_QUANTITY_EXCEEDED."
)


def _created(request: Any, path: str) -> JSONResponse:
    body = request_out(request).model_dump(mode="json")
    return JSONResponse(body, status_code=201, headers={"Location": f"/api/v1/{path}/{request.id}"})


@router.post(
    "/inventory-cancels",
    status_code=status.HTTP_201_CREATED,
    response_model=InventoryRequestOut,
    summary="Cancel a declared inventory (撤销申请单, CEB623), before or after release",
    description=(
        "By the inventory's declarant (`agentCode`) or its platform (`ebpCode`), or an enterprise either "
        "delegated its orders to. The inventory must be with customs (DECLARED, INSPECTION or CLEARED). "
        "Approved, the record becomes REVOKED and the buyer's annual quota is given back. "
        + _FILED.format(message="CEB623", receipt="CEB624")
        + " The same can be sent as a CEB623Message to POST /api/v1/messages."
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    operation_id="file_inventory_cancel",
)
async def file_cancel(
    data: InventoryCancelIn, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> JSONResponse:
    request = await service.file_request(session, settings, principal, "cancel", data.model_dump(exclude_none=True))
    return _created(request, "inventory-cancels")


@router.post(
    "/inventory-returns",
    status_code=status.HTTP_201_CREATED,
    response_model=InventoryRequestOut,
    summary="Return released goods (退货申请单, CEB625), within 30 days of release",
    description=(
        "By the declarant or the platform (as a cancel), for a released (CLEARED) inventory, within 30 days of "
        "its release; the goods must be back at the supervised site within 45 days of release (`goodsBackBy`). "
        "`invtRefundList` names the lines (`gnum`) and quantities returned — every line in full if omitted. "
        "Approved, the record becomes RETURNED and the value returned no longer counts against the buyer's "
        "annual quota. "
        + _FILED.format(message="CEB625", receipt="CEB626")
        + " The same can be sent as a CEB625Message to POST /api/v1/messages."
    ),
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    operation_id="file_inventory_return",
)
async def file_return(
    data: InventoryReturnIn, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> JSONResponse:
    request = await service.file_request(session, settings, principal, "return", data.model_dump(exclude_none=True))
    return _created(request, "inventory-returns")


_AS_XML: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The request; with `Accept: application/xml` its receipts as a CEB624 / CEB626 message",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
}


async def _read(
    kind: RequestKind, request_id: uuid.UUID, http: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    request = await service.get_request(session, principal, kind, request_id)
    if prefers_xml(http.headers.get("accept")):
        body = render_request_receipts(kind, receipt_rows(request))
        return Response(body, media_type=XML_RESPONSE)
    return JSONResponse(request_out(request).model_dump(mode="json"))


@router.get(
    "/inventory-cancels/{request_id}",
    response_model=InventoryRequestOut,
    summary="A cancel and customs' answers (CEB624)",
    responses=problems(401, 404, 503, also=_AS_XML),
    operation_id="get_inventory_cancel",
)
async def get_cancel(request_id: uuid.UUID, http: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    return await _read("cancel", request_id, http, session, principal)


@router.get(
    "/inventory-returns/{request_id}",
    response_model=InventoryRequestOut,
    summary="A return and customs' answers (CEB626)",
    responses=problems(401, 404, 503, also=_AS_XML),
    operation_id="get_inventory_return",
)
async def get_return(request_id: uuid.UUID, http: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    return await _read("return", request_id, http, session, principal)
