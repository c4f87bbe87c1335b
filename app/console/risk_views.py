"""The console's risk pages (风险防控): the warning queue with its acknowledge / dismiss / escalate forms, and
an enterprise's credit level, history, local score and warnings. The record page shows its own warnings with the
same forms (app/console/pages.py).

Reads and the handling go through the services the JSON API uses (app/services/warnings.py, credit.py), so
the console and ``POST /api/v1/risk/warnings/{id}/{action}`` act alike: the same state machine, the same
entry on the record's timeline. A handling is committed in its own transaction before the redirect, so the
page it lands on shows it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError, field_validator

from app.console.pages import ALLOWED_ACTIONS, WARNING_ACTIONS, Page, csrf_or_refuse, safe_back, signed_in
from app.deps import SessionDep
from app.errors import Conflict, NotFound
from app.rules.credit import WATCH_BELOW
from app.rules.risk import RULES
from app.schemas.risk import WarningHandling
from app.services import warnings as warning_service
from app.services.credit import credit_history, require_supervisor

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
WARNING_STATUSES = tuple(ALLOWED_ACTIONS)


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


class WarningQuery(BaseModel):
    """The query string of /console/warnings (``status=all`` for every status; open by default)."""

    status: Literal["open", "acknowledged", "dismissed", "escalated", "all"] = "open"
    rule: str | None = Field(default=None, pattern=r"^R[1-8]$")
    enterprise: str | None = Field(default=None, max_length=18, pattern=r"^[0-9A-Za-z]+$")
    cursor: str | None = Field(default=None, max_length=20, pattern=r"^[0-9]+$")

    _blanks = field_validator("rule", "enterprise", "cursor", mode="before")(_blank_is_none)

    def warning_filter(self) -> warning_service.WarningFilter:
        status = None if self.status == "all" else self.status
        return warning_service.WarningFilter(status=status, rule=self.rule, enterprise_code=self.enterprise)

    def query(self, **changes: str | None) -> dict[str, str]:
        values = self.model_dump() | changes
        return {k: v for k, v in values.items() if v}


def _context(page: Page) -> dict[str, Any]:
    return {"rules": RULES, "allowed": ALLOWED_ACTIONS}


@router.get("/warnings")
async def warning_queue(request: Request, db: SessionDep) -> Response:
    page = await signed_in(request)
    context = _context(page) | {"statuses": WARNING_STATUSES, "warnings": [], "next": None}
    try:
        query = WarningQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return page.render("console/warnings.html", context | {"query": WarningQuery(), "invalid": detail}, 422)
    rows, next_cursor = await warning_service.list_warnings(db, query.warning_filter(), query.cursor, PAGE_SIZE)
    more = urlencode(query.query(cursor=next_cursor)) if next_cursor else None
    return page.render("console/warnings.html", context | {"query": query, "warnings": rows, "next": more})


@router.post("/warnings/{warning_id}")
async def handle_warning(
    request: Request,
    warning_id: int,
    action: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    back: Annotated[str, Form(max_length=2000)] = "/console/warnings",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    page = await signed_in(request)
    csrf_or_refuse(page, csrf_token)
    assert page.principal is not None
    require_supervisor(page.principal)
    if action not in WARNING_ACTIONS or not 1 <= warning_id < 2**31:
        return page.render("console/error.html", {"message": "error.bad_action"}, status=422)
    try:
        handling = WarningHandling.model_validate({"note": note})
    except ValidationError:
        return page.render("console/error.html", {"message": "error.note_required"}, status=422)
    try:
        async with request.app.state.sessionmaker() as session, session.begin():
            await warning_service.handle_warning(session, page.principal, warning_id, action, handling.note)
    except NotFound:
        return page.render("console/error.html", {"message": "error.warning_not_found"}, status=404)
    except Conflict:
        return page.render("console/error.html", {"message": "error.warning_handled"}, status=409)
    return page.answer(RedirectResponse(safe_back(back, "/console/warnings"), status_code=303))


@router.get("/enterprises")
async def find_enterprise(request: Request, code: str = "") -> Response:
    """The enterprise box of the queue page: to that enterprise's page."""
    page = await signed_in(request)
    code = code.strip()
    if not code or len(code) > 18 or not code.isalnum() or not code.isascii():
        return page.render("console/error.html", {"message": "error.enterprise_not_found"}, status=404)
    return page.answer(RedirectResponse(f"/console/enterprises/{code}", status_code=303))


@router.get("/enterprises/{code}")
async def enterprise_page(request: Request, code: str, db: SessionDep) -> Response:
    page = await signed_in(request)
    try:
        view = await warning_service.enterprise_risk(db, code, request.app.state.settings)
    except NotFound:
        return page.render("console/error.html", {"message": "error.enterprise_not_found"}, status=404)
    context = _context(page) | {
        "view": view,
        "history": await credit_history(db, code),
        "watch_below": WATCH_BELOW,
        "watch_list": view.score < WATCH_BELOW or view.rejection_outlier,
    }
    return page.render("console/enterprise.html", context)
