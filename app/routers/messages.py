"""CEB XML door: POST a CEB311 / CEB411 / CEB511 message, get its CEB312 / 412 / 512 receipt (or a CEB900); a
CEB623 / CEB625 (cancel / return of an inventory) gets its CEB624 / CEB626."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.ceb import samples
from app.ceb.after_release import request_message_type
from app.deps import PreferHeader, PrincipalDep, applied
from app.errors import UnsupportedMediaType
from app.schemas.problems import problems
from app.services import messages as message_service
from app.services.after_release_messages import receive_request_message
from app.services.waiting import requested_wait

XML_MEDIA_TYPES = ("application/xml", "text/xml")
XML_RESPONSE = "application/xml; charset=utf-8"

router = APIRouter(prefix="/api/v1/messages", tags=["CEB XML messages (CEB311 / 411 / 511)"])


def _xml(example: bytes, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/xml": {"schema": {"type": "string"}, "example": example.decode()}},
    }


def _request_body() -> dict[str, Any]:
    examples = {
        name.split("-")[0]: {"summary": name, "value": body.decode()} for name, body in samples.sample_files().items()
    }
    content = {media: {"schema": {"type": "string"}, "examples": examples} for media in XML_MEDIA_TYPES}
    return {"requestBody": {"required": True, "content": content}}


_COUNT_HEADERS = {
    "Records-Stored": {"description": "Records stored or changed by this message", "schema": {"type": "integer"}},
    "Records-Replayed": {
        "description": "Records that were already stored with this content (idempotent replays)",
        "schema": {"type": "integer"},
    },
    "Records-Rejected": {"description": "Records answered with a negative returnStatus", "schema": {"type": "integer"}},
}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        **_xml(
            samples.sample_receipt("order"),
            "The receipt: CEB312Message for a CEB311, CEB412Message for a CEB411, CEB512Message for a CEB511 — one "
            "`…Return` per record, in order. `returnStatus` 2 = accepted, the business result follows (a replay "
            "answers the same); with `Prefer: wait=N`, 120 = stored (入库); negative = that record was rejected "
            "(see docs/xml.md for the codes), the others are stored all the same.",
        ),
        "headers": _COUNT_HEADERS,
    },
    400: _xml(
        samples.sample_message_return("XML_SCHEMA_INVALID"),
        "CEB900Message: not well-formed, a DOCTYPE, not a CEB311/411/511 message, or it breaks our XSD "
        "(`returnStatus` -1 or -2; `returnInfo` names the line and the rule). Nothing was stored.",
    ),
}


@router.post(
    "",
    summary="Submit a CEB311 / CEB411 / CEB511 message (1..100 records); answered with its receipt",
    description=(
        "The message type is read from the root element (`CEB311Message`, `CEB411Message`, `CEB511Message`, "
        "namespace `http://www.chinaport.gov.cn/ceb`, `ceb:`-prefixed or default). Each record goes through the "
        "same intake as JSON (validation, appType, idempotency, matching, audit) and gets its own `…Return`: "
        "`2` at once, or with `Prefer: wait=N` the business result (`120`, or the negative code). "
        "`BaseTransfer/copCode` must be the enterprise of the X-API-Key; delegations decide whose documents it "
        "may transmit. `ds:Signature`, `BaseSubscribe` and `ExtendMessage` are accepted and kept with the raw "
        "message. The encoding comes from the BOM or the XML declaration (UTF-8, GB18030, GBK …). "
        "A `CEB623Message` (cancel, 撤销) or `CEB625Message` (return, 退货) of a declared inventory is filed as "
        "POST /api/v1/inventory-cancels / inventory-returns would and answered with a `CEB624Message` / "
        "`CEB626Message`: `2` per request filed, or the refusal's -623xxx / -625xxx code (docs/xml.md)."
    ),
    response_class=Response,
    responses=problems(
        401,
        413,
        415,
        503,
        also=_RESPONSES
        | {
            403: {
                "description": "CEB900Message (`COP_CODE_MISMATCH`, returnStatus -900010) when BaseTransfer/copCode "
                "is not the caller; problem+json when the key is not an enterprise's or the enterprise is "
                "suspended",
                "content": {
                    "application/xml": {
                        "schema": {"type": "string"},
                        "example": samples.sample_message_return("COP_CODE_MISMATCH").decode(),
                    },
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
                },
            }
        },
    ),
    openapi_extra=_request_body(),
    operation_id="submit_message",
)
async def submit_message(request: Request, principal: PrincipalDep, prefer: PreferHeader = None) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in XML_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Send CEB XML as application/xml or text/xml — got {content_type or 'no content type'}",
        )
    body = await request.body()
    wait = requested_wait(prefer)
    if request_message_type(body) is not None:  # a cancel (CEB623) or a return (CEB625) of an inventory
        answer = await receive_request_message(request.app.state, principal, body)
    else:
        answer = await message_service.receive_message(request.app.state, principal, body, content_type, wait)
    headers = {}
    if answer.http_status == 200:
        headers = applied(wait) | {
            "Records-Stored": str(answer.stored),
            "Records-Replayed": str(answer.replayed),
            "Records-Rejected": str(answer.rejected),
        }
    return Response(answer.body, status_code=answer.http_status, media_type=XML_RESPONSE, headers=headers)


def prefers_xml(accept: str | None) -> bool:
    """True when the Accept header ranks application/xml or text/xml above application/json (JSON wins ties)."""
    if not accept:
        return False
    best = {"xml": 0.0, "json": 0.0}
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.strip().lower()
        kind = "xml" if media in XML_MEDIA_TYPES else "json" if media == "application/json" else None
        if kind is not None:
            best[kind] = max(best[kind], quality)
    return best["xml"] > 0 and best["xml"] > best["json"]
