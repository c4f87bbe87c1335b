"""Intake and lookup of orders, payments and waybills (one router per document type, built alike)."""
# No "from __future__ import annotations" here: the path-parameter aliases are closure values that
# FastAPI must see as real objects, not strings.

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import JSONResponse

from app.deps import PreferHeader, PrincipalDep, SessionDep, applied
from app.errors import DomainError, Unprocessable
from app.routers.messages import XML_RESPONSE, prefers_xml
from app.schemas.examples import DOCUMENT_EXAMPLES
from app.schemas.problems import problems
from app.schemas.records import BatchItemResult, BatchResult, BatchSummary, DocumentOut, Receipt
from app.services import messages as message_service
from app.services import records as record_service
from app.services.intake import DocType, IntakeItem, ItemResult, RawBody, read_json_body, validate_document
from app.services.submitting import submit
from app.services.waiting import requested_wait

MAX_BATCH = 100
CEB_FORM = {"order": "CEB311", "payment": "CEB411", "waybill": "CEB511"}

ROUTES: dict[DocType, tuple[str, str, str, str, str]] = {
    # doc type: (path, tag, model, owner field, business-number field)
    "order": ("orders", "Orders (订单, CEB311)", "OrderIn", "ebpCode", "orderNo"),
    "payment": ("payments", "Payments (支付单, CEB411)", "PaymentIn", "payCode", "payTransactionId"),
    "waybill": ("waybills", "Waybills (运单, CEB511)", "WaybillIn", "logisticsCode", "logisticsNo"),
}


def _json_body(model: str, examples: dict[str, Any], batch: bool) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model}"}
    schema: dict[str, Any] = ref
    if batch:
        schema = {
            "type": "object",
            "required": ["items"],
            "additionalProperties": False,
            "properties": {"items": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": ref}},
        }
        examples = {
            "batch": {
                "summary": "Two documents in one batch",
                "value": {"items": [e["value"] for e in examples.values()]},
            }
        }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "examples": examples}},
        }
    }


async def _read_json(request: Request, documents: int = 1) -> tuple[Any, RawBody]:
    return read_json_body(await request.body(), request.headers.get("content-type"), documents)


def _receipt_response(result: ItemResult, wait: int | None) -> JSONResponse:
    assert result.receipt is not None
    headers = applied(wait) | ({"Idempotent-Replayed": "true"} if result.receipt.replayed else {})
    return JSONResponse(result.receipt.model_dump(mode="json"), status_code=result.status, headers=headers)


def batch_result(results: list[ItemResult]) -> BatchResult:
    return BatchResult(
        items=[
            BatchItemResult(
                index=r.index,
                status=r.status,
                receipt=r.receipt,
                problem=r.error.problem() if r.error is not None else None,
            )
            for r in results
        ],
        summary=BatchSummary(
            stored=sum(
                1 for r in results if r.receipt is not None and r.receipt.returnStatus == "120" and not r.replayed
            ),
            replayed=sum(1 for r in results if r.replayed),
            rejected=sum(1 for r in results if r.error is not None),
            accepted=sum(1 for r in results if r.status == 202),
        ),
    )


def build_router(doc_type: DocType) -> APIRouter:
    path, tag, model, owner_field, number_field = ROUTES[doc_type]
    router = APIRouter(prefix=f"/api/v1/{path}", tags=[tag])
    examples = DOCUMENT_EXAMPLES[doc_type]

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Receipt,
        summary=f"Submit one {doc_type}",
        description=(
            f"Accepts the {doc_type} — stored durably, answered at once with its acceptance (202, returnStatus "
            "`2`) — and the match stage then matches it with the other documents of its purchase. With "
            "`Prefer: wait=N` the answer waits for that business result: 201 for a new document, 200 for a "
            "change or a cancellation (returnStatus `120`, with the record's status), or the problem that refused "
            "it (404, 409 with the spec's negative code). Sending the same content again is an idempotent replay: "
            "200 with the original acceptance (header `Idempotent-Replayed: true`), no new row. appType 1 new, "
            "2 change, 3 cancel; appStatus 1 stores a draft that is not matched."
        ),
        responses=problems(
            400,
            401,
            403,
            404,
            409,
            413,
            415,
            422,
            503,
            also={
                200: {"model": Receipt, "description": "Replayed; or (waited) changed or cancelled"},
                201: {"model": Receipt, "description": "Waited: stored and matched (returnStatus 120)"},
            },
        ),
        openapi_extra=_json_body(model, examples, batch=False),
        operation_id=f"submit_{doc_type}",
    )
    async def submit_one(request: Request, principal: PrincipalDep, prefer: PreferHeader = None) -> Response:
        data, raw = await _read_json(request)
        document = validate_document(doc_type, data)
        wait = requested_wait(prefer)
        [result] = await submit(request.app.state, principal, doc_type, [IntakeItem(0, document=document)], raw, wait)
        if result.error is not None:
            raise result.error
        return _receipt_response(result, wait)

    @router.post(
        "/batch",
        response_model=BatchResult,
        summary=f"Submit 1..{MAX_BATCH} {doc_type}s",
        description=(
            "Each item gets its own result with the status it would have had alone (202 accepted; with "
            "`Prefer: wait=N`, its business result); one bad item never rejects the others. All accepted items "
            "are written in one transaction."
        ),
        responses=problems(400, 401, 403, 413, 415, 422, 503),
        openapi_extra=_json_body(model, examples, batch=True),
        operation_id=f"submit_{doc_type}_batch",
    )
    async def submit_batch(request: Request, principal: PrincipalDep, prefer: PreferHeader = None) -> JSONResponse:
        data, raw = await _read_json(request, documents=MAX_BATCH)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list) or set(data) != {"items"}:
            raise Unprocessable(
                'A batch is an object {"items": [...]}',
                errors=[
                    {
                        "path": "items",
                        "message": "expected an object with only an items array",
                        "type": "batch",
                    }
                ],
            )
        raw_items = data["items"]
        if not 1 <= len(raw_items) <= MAX_BATCH:
            raise Unprocessable(
                f"A batch holds 1..{MAX_BATCH} documents, not {len(raw_items)}",
                code="BATCH_SIZE",
                errors=[{"path": "items", "message": f"1..{MAX_BATCH} items", "type": "too_long"}],
            )
        items = []
        for index, raw_item in enumerate(raw_items):
            try:
                items.append(IntakeItem(index, document=validate_document(doc_type, raw_item, ("items", index))))
            except DomainError as error:
                items.append(IntakeItem(index, error=error))
        wait = requested_wait(prefer)
        results = await submit(request.app.state, principal, doc_type, items, raw, wait)
        return JSONResponse(batch_result(results).model_dump(mode="json"), headers=applied(wait))

    @router.get(
        f"/{{{owner_field}}}/{{{number_field}}}",
        response_model=DocumentOut,
        summary=f"Read one {doc_type} by its natural key ({owner_field}, {number_field})",
        description=f"JSON by default; with `Accept: application/xml` the stored {doc_type} as its "
        f"{CEB_FORM[doc_type]} message (one record; see docs/xml.md).",
        responses=problems(
            401,
            404,
            503,
            also={
                200: {
                    "description": f"The {doc_type} (JSON), or its {CEB_FORM[doc_type]} form (XML)",
                    "content": {"application/xml": {"schema": {"type": "string"}}},
                }
            },
        ),
        operation_id=f"get_{doc_type}",
    )
    async def get_one(
        owner: Annotated[str, Path(alias=owner_field, max_length=18)],
        number: Annotated[str, Path(alias=number_field, max_length=60)],
        request: Request,
        session: SessionDep,
        principal: PrincipalDep,
    ) -> DocumentOut | Response:
        doc = await record_service.get_document(session, principal, doc_type, owner, number)
        if prefers_xml(request.headers.get("accept")):
            return Response(await message_service.render_document(session, doc), media_type=XML_RESPONSE)
        return record_service.document_out(doc)

    return router


routers = [build_router(doc_type) for doc_type in ROUTES]
