"""RFC 9457 problem details, as declared in OpenAPI for every error response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    path: str = Field(description="Where in the body or query, e.g. `orderList/0/qty`")
    message: str
    type: str | None = None
    code: str | None = Field(default=None, description="The enterprise code, for ENTERPRISE_NOT_FILED")


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str = Field(description="Stable machine-readable code (see docs/reason-codes.md)")
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None
    cebReturnStatus: str | None = Field(default=None, description="The spec's negative receipt code, where it has one")


_DESCRIPTIONS = {
    400: "Malformed body (not JSON, not UTF-8) — `MALFORMED_BODY`; or URL (a NUL, a query parameter twice) — "
    "`MALFORMED_URL`",
    401: "Missing or invalid X-API-Key — `UNAUTHENTICATED`",
    403: "Not allowed for this key — e.g. `NOT_AUTHORISED_FOR_ENTERPRISE`, `ENTERPRISE_SUSPENDED`, `ADMIN_REQUIRED`",
    404: "Not found, or not visible to this key (the two are never told apart)",
    409: "Conflicts with the stored state — e.g. `DUPLICATE_DIFFERENT_CONTENT`, `RECORD_ALREADY_DECLARED`",
    413: "Body larger than the limit — `PAYLOAD_TOO_LARGE`",
    415: "Content type not accepted — `UNSUPPORTED_MEDIA_TYPE`",
    422: "Validation failed; `errors` lists each bad field by path — `VALIDATION_FAILED`, `ENTERPRISE_NOT_FILED`",
    429: "Too many requests: of this class from the enterprise in the window, or (public routes) from this client or "
    "about this ID number; retry after `Retry-After` seconds — `RATE_LIMITED`",
    503: "Database unreachable; nothing was stored; retry — `DATABASE_UNAVAILABLE`",
}


def problems(*statuses: int, also: dict[int | str, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry for a route: each status as problem+json (plus ``also``)."""
    return (also or {}) | {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
