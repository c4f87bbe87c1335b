"""Agencies answering later: signed callbacks (HMAC-SHA256 over id + timestamp + body)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.deps import SessionmakerDep, SettingsDep
from app.schemas.problems import problems
from app.services.callbacks import receive_callback

router = APIRouter(prefix="/api/v1/agency-callbacks", tags=["Agency callbacks (回执)"])


class CallbackResult(BaseModel):
    status: Literal["accepted", "duplicate"]
    webhookId: str
    recordStatus: str | None = None


@router.post(
    "/{agency}",
    response_model=CallbackResult,
    summary="An agency's later answer (e.g. customs releasing after inspection), signed",
    description="Standard Webhooks: headers `webhook-id`, `webhook-timestamp` (unix seconds, ±300 s) and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` with the secret of the "
    "agency in the URL, SW_<AGENCY>_CALLBACK_SECRETS; a comma-separated current and previous secret rotate "
    "with an overlap). The same id is processed once. "
    'Body: `{"agency", "recordId", "dispatchId", "receipts": [{"returnStatus", "returnInfo", "returnTime"}]}`.',
    responses=problems(401, 404, 409, 413, 422, 503),
    operation_id="agency_callback",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "examples": {
                        "release": {
                            "summary": "Customs releases after inspection",
                            "value": {
                                "agency": "customs",
                                "recordId": "0b7e5a52-1c57-4a8e-9a55-3a3c1d1f4a10",
                                "dispatchId": "6f1c2f7e-2d0b-4d9b-9a52-8f3f0d1c2b3a",
                                "receipts": [
                                    {"returnStatus": "800", "returnInfo": "放行", "returnTime": "20261123102000123"}
                                ],
                            },
                        }
                    },
                }
            },
        }
    },
)
async def agency_callback(
    agency: str, request: Request, sessionmaker: SessionmakerDep, settings: SettingsDep
) -> dict[str, Any]:
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await receive_callback(sessionmaker, settings, agency, headers, body)
