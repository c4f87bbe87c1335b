"""ASGI middleware: refuse bodies over the limit, NUL in the URL and repeated query parameters, before anything
parses them.

Documents (``/api/v1/{orders,payments,waybills}[/batch]`` and ``/api/v1/messages``) may be as large as
``SW_MAX_BODY_BYTES``: a batch of 100 orders of 99 lines is several MiB. Every other ``/api/v1`` route takes a
small JSON body (a filing, a key label, a goods record, an agency callback) and is held to ``SMALL_BODY_BYTES``:
validation costs time and memory per member of the body (a 6 MB object of 600,000 unknown keys took 7 s and
160 MB to refuse), so a body no such route needs is refused before it is read.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import DomainError, MalformedBody, PayloadTooLarge

SMALL_BODY_BYTES = 64 * 1024
_DOCUMENT_ROUTE = re.compile(r"/api/v1/(?:(?:orders|payments|waybills)(?:/batch)?|messages)/?")


def body_limit(path: str, max_bytes: int) -> int:
    """The largest body ``path`` accepts."""
    if path.startswith("/api/v1/") and not _DOCUMENT_ROUTE.fullmatch(path):
        return min(max_bytes, SMALL_BODY_BYTES)
    return max_bytes


def _is_json(scope: Scope) -> bool:
    headers: dict[bytes, bytes] = dict(scope["headers"])
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return content_type == b"application/json" or content_type.endswith(b"+json")


def _utf16_or_utf32(head: bytes) -> bool:
    """JSON text starts with an ASCII character, so its first four bytes hold a NUL in UTF-16 and UTF-32 (with or
    without a BOM) and never in UTF-8. Parsers that guess the encoding (``json.loads`` on bytes) would read them;
    every JSON body is held to UTF-8 alike."""
    return head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head


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
        max_bytes = body_limit(scope.get("path", ""), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await self._respond(scope, send, PayloadTooLarge(f"The body is larger than {max_bytes} bytes"))
            return
        received = 0
        head = b"" if _is_json(scope) else None

        async def limited_receive() -> Message:
            nonlocal received, head
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > max_bytes:
                    # A chunked body that grew past the limit: the problem handler answers 413.
                    raise PayloadTooLarge(f"The body is larger than {max_bytes} bytes")
                if head is not None and len(head) < 4:
                    head += chunk[: 4 - len(head)]
                    if _utf16_or_utf32(head):
                        raise MalformedBody("A JSON body must be UTF-8 text (RFC 8259 §8.1)")
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
