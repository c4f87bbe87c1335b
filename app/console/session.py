"""The console's session: a signed cookie and no server-side state (no table, no migration).

The cookie holds the id of the API key the official signed in with — never the key itself — the CSRF token
of the session's forms and the chosen language, signed with ``SW_CONSOLE_SECRET`` (itsdangerous, HMAC with a
timestamp). It is issued again on every console answer, so its signature's age is the time since the last
request: older than ``SW_CONSOLE_IDLE_TIMEOUT_S`` is an idle session, and ended. The key is read again on every
request, so a revoked key ends its sessions at once.

Starlette's SessionMiddleware signs the same way but would set ``Secure`` by configuration only, not from the
request's scheme, and would parse the cookie on every API request; this module is those few lines, for the
console's routes alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from fastapi import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, ValidationError

from app.console.catalogue import Lang

COOKIE_NAME = "sw_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
BOOTSTRAP_PREFIX = "bootstrap:"


class ConsoleSession(BaseModel):
    csrf: str
    key_id: str | None = None
    lang: Lang = "zh"

    @property
    def signed_in(self) -> bool:
        return self.key_id is not None


def new_session(lang: Lang = "zh", key_id: str | None = None) -> ConsoleSession:
    """A fresh session with a new CSRF token (also at sign-in, so that a token seen before it is worthless)."""
    return ConsoleSession(csrf=secrets.token_urlsafe(32), key_id=key_id, lang=lang)


def bootstrap_key_id(admin_token: str) -> str:
    """The session's name for ``SW_ADMIN_TOKEN``: a fingerprint, so that changing the token ends its sessions."""
    return BOOTSTRAP_PREFIX + hashlib.sha256(admin_token.encode()).hexdigest()[:32]


SessionRead = tuple[ConsoleSession | None, Literal["none", "valid", "expired", "invalid"]]


class SessionCodec:
    def __init__(self, secret: str, idle_timeout_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="single-window-console-session")
        self.idle_timeout_s = idle_timeout_s

    def dumps(self, session: ConsoleSession) -> str:
        return self._serializer.dumps(session.model_dump())

    def read(self, request: Request) -> SessionRead:
        cookie = request.cookies.get(COOKIE_NAME)
        if not cookie:
            return None, "none"
        try:
            data = self._serializer.loads(cookie, max_age=self.idle_timeout_s)
            return ConsoleSession.model_validate(data), "valid"
        except SignatureExpired:
            return None, "expired"
        except (BadSignature, ValidationError):
            return None, "invalid"

    def write(self, request: Request, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.dumps(session),
            max_age=self.idle_timeout_s,
            path=COOKIE_PATH,
            httponly=True,
            # Secure whenever the page came over HTTPS (behind a proxy: uvicorn's --forwarded-allow-ips).
            secure=request.url.scheme == "https",
            samesite="strict",
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict")


def csrf_matches(session: ConsoleSession | None, submitted: str | None) -> bool:
    return session is not None and submitted is not None and hmac.compare_digest(session.csrf, submitted)
