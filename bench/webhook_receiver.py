"""The bench's webhook receiver (a process of its own, so that it does not share the worker's event loop):
answers 204 at once, keeps per webhook-id the time from the event (the payload's ``timestamp``) to its
arrival, and every arrival's webhook-id, record and feed position in the order they came (``GET /arrivals``,
for the bench's check of order and duplicates). ``GET /stats``: how many arrived (unique and in all) — polled
often, so it stays small; ``GET /latencies``: the latencies in milliseconds, once at the end."""

from __future__ import annotations

import json
import time
from datetime import datetime

from fastapi import FastAPI, Request, Response

app = FastAPI()
_latency_ms: dict[str, float] = {}
_arrivals = 0
_log: list[tuple[str, str, str]] = []  # (webhook-id, recordId, position) of every arrival, in order


@app.post("/hooks")
async def hooks(request: Request) -> Response:
    global _arrivals
    _arrivals += 1
    body = await request.body()
    webhook_id = request.headers.get("webhook-id", "")
    event = json.loads(body)
    if webhook_id not in _latency_ms:
        at = datetime.fromisoformat(event["timestamp"]).timestamp()
        _latency_ms[webhook_id] = (time.time() - at) * 1000
    _log.append((webhook_id, event["data"]["recordId"], event["data"]["position"]))
    return Response(status_code=204)


@app.get("/stats")
async def stats() -> dict[str, object]:
    return {"unique": len(_latency_ms), "arrivals": _arrivals}


@app.get("/latencies")
async def latencies() -> dict[str, object]:
    return {"latency_ms": list(_latency_ms.values())}


@app.get("/arrivals")
async def arrivals() -> dict[str, object]:
    return {"arrivals": _log}


@app.post("/reset")
async def reset() -> Response:
    global _arrivals
    _latency_ms.clear()
    _log.clear()
    _arrivals = 0
    return Response(status_code=204)
