"""Typed domain errors and their one mapping to RFC 9457 problem+json with a stable ``code``."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status: int = 400
    code: str = "BAD_REQUEST"
    title: str = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://single-window.dev/problems/{self.code.lower().replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class MalformedBody(DomainError):
    status, code, title = 400, "MALFORMED_BODY", "The body could not be read"


class Unauthenticated(DomainError):
    status, code, title = 401, "UNAUTHENTICATED", "A valid X-API-Key is required"


class Forbidden(DomainError):
    status, code, title = 403, "FORBIDDEN", "Not allowed"


class NotFound(DomainError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "CONFLICT", "Conflict with the stored state"


class PayloadTooLarge(DomainError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "The body is larger than allowed"


class UnsupportedMediaType(DomainError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported content type"


class Unprocessable(DomainError):
    status, code, title = 422, "VALIDATION_FAILED", "The document is not valid"


class RateLimited(DomainError):
    status, code, title = 429, "RATE_LIMITED", "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retryAfterSeconds=retry_after_s)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(DomainError):
    status, code, title = 503, "DATABASE_UNAVAILABLE", "The database is not reachable; retry later"


def problem_response(
    error: DomainError, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error.problem(request.url.path if request else None),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# A body of unknown members or wrong values gives one error each: listing them all would answer a 6 MB body of
# 600,000 unknown keys with 55 MB of problems. The first ones tell the sender what is wrong.
MAX_LISTED_ERRORS = 100


def validation_errors(errors: Any, prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{path, message, type}]`` — the path is JSON-pointer-like (``orderList/0/qty``);
    at most ``MAX_LISTED_ERRORS`` of them."""
    out = []
    for err in itertools.islice(errors, MAX_LISTED_ERRORS):
        loc = tuple(prefix) + tuple(err.get("loc", ()))
        out.append(
            {
                "path": "/".join(str(p) for p in loc),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return out


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app fully matches at this path (routers may be nested)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "X-API-Key"} if exc.status == 401 else None
        retry_after_s = getattr(exc, "retry_after_s", None)
        if retry_after_s is not None:
            headers = {"Retry-After": str(retry_after_s)}
        return problem_response(exc, request, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(MalformedBody("The body is not valid JSON"), request)
        return problem_response(
            Unprocessable("Some parameters are not valid", errors=validation_errors(errors)), request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 400 from FastAPI itself is a body it could not parse (bad JSON, nesting too deep, a huge integer).
        codes = {
            400: "MALFORMED_BODY",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            401: "UNAUTHENTICATED",
            403: "FORBIDDEN",
        }
        error = DomainError(
            str(exc.detail),
            code=codes.get(exc.status_code, f"HTTP_{exc.status_code}"),
            status=exc.status_code,
        )
        error.title = str(exc.detail)
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names only the first route whose path matched; the resource has them all (RFC 9110 §15.5.6).
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(error, request, headers or None)

    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:  # the cases of ``database_gone``
        if getattr(getattr(request.state, "read_source", None), "name", None) == "replica":
            raise exc  # the replica went away mid-read: app/read_replica_retry.py asks the primary
        log.warning("database unavailable: %s", exc)
        response = problem_response(ServiceUnavailable("The database is not reachable; nothing was stored"), request)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return await _database_down(request, exc)
        raise exc


# SQLSTATEs of a database that is not there for now: connection exceptions (class 08), shutting down or
# starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now), too many connections.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite (primary result codes): busy or locked past the busy timeout, an I/O error, a full disk, a file that cannot
# be opened. Not SQLITE_ERROR, which sqlite3 raises as an OperationalError too: "no such table", a syntax error.
_SQLITE_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN}
)


def database_gone(exc: BaseException) -> bool:
    """``exc`` is one the handlers answer ``503 DATABASE_UNAVAILABLE``: the database went away or refused us,
    as opposed to a statement that failed."""
    if isinstance(exc, InterfaceError | PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and database_unavailable(exc)


def database_unavailable(exc: DBAPIError) -> bool:
    """The database cannot be reached (a 503 to retry), as opposed to a statement that failed (a bug: 500).

    Besides a connection lost mid-request, a *refused* connection: the asyncpg driver raises those at connect
    time as plain DBAPI errors, e.g. "the database system is starting up" (57P03) during a restart, or
    "database … is not currently accepting connections" (55000, ``ALLOW_CONNECTIONS false``) — a connect
    error carries no statement.
    """
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):
        return (exc.orig.sqlite_errorcode & 0xFF) in _SQLITE_UNAVAILABLE
    if isinstance(exc, OperationalError):  # other drivers: a connection-level failure
        return True
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES:
        return True
    return sqlstate == "55000" and exc.statement is None
