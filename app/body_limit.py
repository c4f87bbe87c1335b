"""ASGI middleware: refuse bodies over the limit, NUL in the URL and repeated query parameters, before anything
parses them."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import DomainError, MalformedBody, PayloadTooLarge


def _repeated_query_name(query_string: bytes) -> str | None:
    seen: set[str] = set()
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            # No stored value may hold NUL (PostgreSQL text cannot), so no lookup key may either.
            await self._respond(scope, send, MalformedBody("The URL contains a NUL character", code="MALFORMED_URL"))
            return
        repeated = _repeated_query_name(scope.get("query_string", b""))
        if repeated is not None:
            # Every query parameter takes one value; silently keeping the last of several would guess.
            detail = f"The query parameter {repeated!r} is given more than once"
            await self._respond(scope, send, MalformedBody(detail, code="MALFORMED_URL"))
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._respond(scope, send, PayloadTooLarge(f"The body is larger than {self.max_bytes} bytes"))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # A chunked body that grew past the limit: the problem handler answers 413.
                    raise PayloadTooLarge(f"The body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _respond(self, scope: Scope, send: Send, error: DomainError) -> None:
        body = json.dumps(error.problem(scope.get("path", "").replace("\x00", ""))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
