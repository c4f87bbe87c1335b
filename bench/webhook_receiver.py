"""The bench's webhook receiver (a process of its own, so that it does not share the worker's event loop):
answers 204 at once, and keeps per webhook-id the time from the event (the payload's ``timestamp``) to its
arrival. ``GET /stats``: how many arrived (unique and in all) and those latencies in milliseconds."""

from __future__ import annotations

import json
import time
from datetime import datetime

from fastapi import FastAPI, Request, Response

app = FastAPI()
_latency_ms: dict[str, float] = {}
_arrivals = 0


@app.post("/hooks")
async def hooks(request: Request) -> Response:
    global _arrivals
    _arrivals += 1
    body = await request.body()
    webhook_id = request.headers.get("webhook-id", "")
    if webhook_id not in _latency_ms:
        at = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
        _latency_ms[webhook_id] = (time.time() - at) * 1000
    return Response(status_code=204)


@app.get("/stats")
async def stats() -> dict[str, object]:
    return {"unique": len(_latency_ms), "arrivals": _arrivals, "latency_ms": list(_latency_ms.values())}


@app.post("/reset")
async def reset() -> Response:
    global _arrivals
    _latency_ms.clear()
    _arrivals = 0
    return Response(status_code=204)
