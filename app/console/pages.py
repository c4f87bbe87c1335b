"""The console's pages: sign-in and sign-out, the record search, and the record page.

Every read goes through the services the JSON API uses (app/services/records.py) with the signed-in
official's principal, so the console shows exactly what the API would show that key.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.console.catalogue import LANGS, Lang, has, translator
from app.console.formatting import compact, local_time
from app.console.record_view import compare_documents, verdict
from app.console.search import RecordSearch
from app.console.session import (
    BOOTSTRAP_PREFIX,
    CSRF_FIELD,
    ConsoleSession,
    SessionCodec,
    bootstrap_key_id,
    csrf_matches,
    new_session,
)
from app.deps import SessionDep
from app.errors import NotFound, Unauthenticated
from app.routers.api_docs import TEMPLATES_DIR
from app.schemas.records import RecordStatusName, RecordSummary
from app.services import records as record_service
from app.services.auth import Principal, authenticate, principal_of_key_id
from app.services.warnings import HANDLEABLE, WarningFilter, list_warnings
from app.shared_routes import add_routes

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.filters["local_time"] = local_time
templates.env.filters["compact"] = compact
STATUSES: tuple[RecordStatusName, ...] = RecordStatusName.__args__  # type: ignore[attr-defined]
# Statuses after which nothing more happens to a record: its page stops asking for news.
SETTLED = frozenset({"MISMATCHED", "CLEARED", "REJECTED", "CANCELLED", "REVOKED", "RETURNED"})
PAGE_SIZE = 50
# The warning actions each status still allows (app/services/warnings.py HANDLEABLE, the other way round).
WARNING_ACTIONS = ("acknowledge", "dismiss", "escalate")
ALLOWED_ACTIONS = {
    status: tuple(a for a in WARNING_ACTIONS if status in HANDLEABLE[a])
    for status in ("open", "acknowledged", "dismissed", "escalated")
}

SECURITY_HEADERS = {
    # Only our own files: no inline script or style, no framing, forms post to us alone.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Vary": "HX-Request, HX-Target, Cookie",
}


class SignInRequired(Exception):
    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the console on ``app``: its router, and the session codec with its secret."""
    if settings.console_secret is None:
        log.info("SW_CONSOLE_SECRET is unset: console sessions are signed with a secret of this process alone")
    secret = settings.console_secret.get_secret_value() if settings.console_secret else secrets.token_urlsafe(32)
    app.state.console_sessions = SessionCodec(secret, settings.console_idle_timeout_s)
    app.state.console_zone = ZoneInfo(settings.console_time_zone)
    add_routes(app, router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = "/console/sign-in" + (f"?{urlencode({'reason': exc.reason})}" if exc.reason else "")
        if request.headers.get("HX-Request"):  # a live part: have htmx load the whole sign-in page
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _forged(request: Request, exc: CsrfRefused) -> Response:
        return exc.page.render("console/error.html", {"message": "error.csrf"}, status=403)


@dataclass
class Page:
    """One console request: its session (written back with every answer, which keeps it alive)."""

    request: Request
    session: ConsoleSession
    principal: Principal | None = None

    @property
    def codec(self) -> SessionCodec:
        codec: SessionCodec = self.request.app.state.console_sessions
        return codec

    def render(self, template: str, context: Mapping[str, Any] | None = None, status: int = 200) -> Response:
        zone: ZoneInfo = self.request.app.state.console_zone
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "t": translator(self.session.lang),
                "has_message": has,
                "lang": self.session.lang,
                "other_lang": next(lang for lang in LANGS if lang != self.session.lang),
                "csrf_field": CSRF_FIELD,
                "csrf": self.session.csrf,
                "principal": self.principal,
                "zone": zone,
                "here": self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else ""),
                **(context or {}),
            },
            status_code=status,
        )
        return self.answer(response)

    def answer(self, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        self.codec.write(self.request, response, self.session)
        return response


def _codec(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.console_sessions
    return codec


async def _principal_of(request: Request, key_id: str) -> Principal | None:
    """The session's key, read again now: revoked, or no longer an official's or admin's, ends the session."""
    settings: Settings = request.app.state.settings
    if key_id.startswith(BOOTSTRAP_PREFIX):
        token = settings.admin_token
        valid = token is not None and secrets.compare_digest(bootstrap_key_id(token.get_secret_value()), key_id)
        return Principal(kind="admin", key_id="bootstrap") if valid else None
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as conn:
        principal = await principal_of_key_id(conn, uuid.UUID(key_id))
    return principal if principal is not None and principal.reads_everything else None


async def signed_in(request: Request) -> Page:
    session, how = _codec(request).read(request)
    if session is None or not session.signed_in or session.key_id is None:
        raise SignInRequired("expired" if how == "expired" else None)
    principal = await _principal_of(request, session.key_id)
    if principal is None:
        raise SignInRequired("invalid")
    return Page(request, session, principal)


def anonymous(request: Request) -> Page:
    session, _ = _codec(request).read(request)
    return Page(request, session or new_session())


def csrf_or_refuse(page: Page, submitted: str | None) -> None:
    if not csrf_matches(page.session, submitted):
        raise CsrfRefused(page)


def safe_back(back: str, default: str) -> str:
    """Back to the console page a form was on, and nowhere else (no open redirect)."""
    return back if back.startswith("/console") and not back.startswith("//") and "\\" not in back else default


class CsrfRefused(Exception):
    def __init__(self, page: Page) -> None:
        super().__init__("CSRF token missing or wrong")
        self.page = page


@router.get("")
async def console_home() -> RedirectResponse:
    return RedirectResponse("/console/records", status_code=303)


@router.get("/sign-in")
async def sign_in_form(request: Request, reason: str | None = None) -> Response:
    page = anonymous(request)
    if page.session.signed_in:
        page.session = new_session(page.session.lang)
    notes = {"expired": "sign_in.expired", "signed_out": "sign_in.signed_out", "invalid": "sign_in.invalid"}
    return page.render("console/sign_in.html", {"note": notes.get(reason or "")})


@router.post("/sign-in")
async def sign_in(
    request: Request,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    page = anonymous(request)
    csrf_or_refuse(page, csrf_token)
    settings: Settings = request.app.state.settings
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as conn:
            principal = await authenticate(conn, key.strip(), settings.admin_token)
    except Unauthenticated:
        return page.render("console/sign_in.html", {"error": "sign_in.invalid"}, status=401)
    if not principal.reads_everything:
        return page.render("console/sign_in.html", {"error": "sign_in.not_official"}, status=403)
    admin_token = settings.admin_token
    key_id = (
        bootstrap_key_id(admin_token.get_secret_value())
        if principal.key_id == "bootstrap" and admin_token is not None
        else principal.key_id
    )
    # A new session (and CSRF token) at sign-in: nothing planted in the browser before it carries over.
    page.session = new_session(page.session.lang, key_id)
    return page.answer(RedirectResponse("/console/records", status_code=303))


@router.post("/sign-out")
async def sign_out(request: Request, csrf_token: Annotated[str | None, Form(max_length=200)] = None) -> Response:
    page = anonymous(request)
    csrf_or_refuse(page, csrf_token)
    response = RedirectResponse("/console/sign-in?reason=signed_out", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    SessionCodec.clear(response)
    return response


@router.post("/language")
async def choose_language(
    request: Request,
    lang: Annotated[str, Form(max_length=2)] = "zh",
    back: Annotated[str, Form(max_length=2000)] = "/console/records",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    page = anonymous(request)
    csrf_or_refuse(page, csrf_token)
    chosen: Lang = "en" if lang == "en" else "zh"
    page.session = page.session.model_copy(update={"lang": chosen})
    return page.answer(RedirectResponse(safe_back(back, "/console/records"), status_code=303))


@router.get("/records")
async def search_records(request: Request, db: SessionDep) -> Response:
    page = await signed_in(request)
    assert page.principal is not None
    try:
        search = RecordSearch.model_validate(dict(request.query_params))
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        context = {"search": RecordSearch(), "statuses": STATUSES, "invalid": detail, "records": [], "next": None}
        return page.render("console/search.html", context, status=422)
    result = await record_service.list_records(
        db,
        page.principal,
        search.record_filter(request.app.state.console_zone),
        PAGE_SIZE,
        search.cursor,
        newest_first=True,
    )
    more = urlencode(search.query(cursor=result.nextCursor)) if result.nextCursor else None
    context = {"search": search, "statuses": STATUSES, "records": result.items, "next": more}
    template = {"results": "console/_results.html", "more": "console/_rows.html"}.get(
        request.headers.get("HX-Target", "") if request.headers.get("HX-Request") else "", "console/search.html"
    )
    return page.render(template, context)


async def _record_context(page: Page, db: SessionDep, record_id: uuid.UUID) -> dict[str, Any]:
    assert page.principal is not None
    record = await record_service.get_record(db, page.principal, record_id)
    warnings, _ = await list_warnings(db, WarningFilter(record_id=record_id), None, 100)
    return {
        "warnings": warnings,
        "allowed": ALLOWED_ACTIONS,
        "record": record,
        "verdict": verdict_line(record, page.session.lang),
        "comparison": compare_documents(record),
        "live": record.status not in SETTLED,
    }


def verdict_line(record: RecordSummary, lang: Lang) -> str:
    t = translator(lang)
    said = verdict(record)
    params = dict(said.params)
    if "missing" in params:
        params["missing"] = ("、" if lang == "zh" else ", ").join(t(f"doc.{d}") for d in record.missing)
    return t(said.key, **params)


@router.get("/records/{record_id}")
async def record_page(request: Request, record_id: uuid.UUID, db: SessionDep) -> Response:
    page = await signed_in(request)
    try:
        context = await _record_context(page, db, record_id)
    except NotFound:
        return page.render("console/error.html", {"message": "error.not_found"}, status=404)
    return page.render("console/record.html", context)


@router.get("/records/{record_id}/live")
async def record_live(request: Request, record_id: uuid.UUID, db: SessionDep) -> Response:
    """The parts of a record page that change while it goes through the agencies (polled by htmx)."""
    page = await signed_in(request)
    try:
        context = await _record_context(page, db, record_id)
    except NotFound:
        return page.render("console/error.html", {"message": "error.not_found"}, status=404)
    return page.render("console/_live.html", context)
