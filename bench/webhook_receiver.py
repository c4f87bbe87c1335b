"""The bench's webhook receiver (a process of its own, so that it does not share the worker's event loop):
answers 204 at once, keeps per webhook-id the time from the event (the payload's ``timestamp``) to its
arrival, and every arrival's webhook-id, record and feed position in the order they came (``GET /arrivals``,
for the bench's check of order and duplicates). ``GET /stats``: how many arrived (unique and in all) — polled
often, so it stays small; ``GET /latencies``: the latencies in milliseconds, once at the end.

A bare ASGI callable rather than a FastAPI app: it shares two cores with the delivery worker and the database,
and a framework's routing and request objects would make the receiver, not the sender, what the bench
measures (an enterprise's real receiver runs on a machine of its own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_latency_ms: dict[str, float] = {}
_arrivals = 0
_log: list[tuple[str, str, str]] = []  # (webhook-id, recordId, position) of every arrival, in order


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: object | None = None) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json")] if payload is not None else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _arrived(webhook_id: str, body: bytes) -> None:
    global _arrivals
    _arrivals += 1
    event = json.loads(body)
    if webhook_id not in _latency_ms:
        at = datetime.fromisoformat(event["timestamp"]).timestamp()
        _latency_ms[webhook_id] = (time.time() - at) * 1000
    _log.append((webhook_id, event["data"]["recordId"], event["data"]["position"]))


def _reset() -> None:
    global _arrivals
    _latency_ms.clear()
    _log.clear()
    _arrivals = 0


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":  # nothing to set up or tear down
        while True:
            kind = (await receive())["type"]
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return
    method, path = scope["method"], scope["path"]
    body = await _body(receive)
    if method == "POST" and path == "/hooks":
        webhook_id = next((v.decode() for k, v in scope["headers"] if k == b"webhook-id"), "")
        _arrived(webhook_id, body)
        await _answer(send, 204)
    elif method == "GET" and path == "/stats":
        await _answer(send, 200, {"unique": len(_latency_ms), "arrivals": _arrivals})
    elif method == "GET" and path == "/latencies":
        await _answer(send, 200, {"latency_ms": list(_latency_ms.values())})
    elif method == "GET" and path == "/arrivals":
        await _answer(send, 200, {"arrivals": _log})
    elif method == "POST" and path == "/reset":
        _reset()
        await _answer(send, 204)
    else:
        await _answer(send, 404, {"detail": "not found"})
