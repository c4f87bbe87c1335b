"""A real webhook receiver for the tests: uvicorn on a free port, in this event loop, recording what arrives.
It can answer 500 a number of times, or hang until released."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from tests.live import free_port


@dataclass
class Arrival:
    webhook_id: str
    timestamp: str
    signature: str
    content_type: str
    body: bytes
    host: str = ""

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    url: str = ""
    fail_next: int = 0
    hang: bool = False
    arrivals: list[Arrival] = field(default_factory=list)  # answered 2xx
    refused: list[Arrival] = field(default_factory=list)  # answered 500
    hanging: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        application = FastAPI()

        @application.post("/hooks")
        async def hooks(request: Request) -> Response:
            h = request.headers
            arrival = Arrival(
                h.get("webhook-id", ""),
                h.get("webhook-timestamp", ""),
                h.get("webhook-signature", ""),
                h.get("content-type", ""),
                await request.body(),
                h.get("host", ""),
            )
            if self.hang:
                self.hanging += 1
                await self.release.wait()
                self.hanging -= 1
            if self.fail_next > 0:
                self.fail_next -= 1
                self.refused.append(arrival)
                return Response(status_code=500)
            self.arrivals.append(arrival)
            return Response(status_code=204)

        return application

    def unique(self) -> list[Arrival]:
        """What a receiver deduping on webhook-id keeps: the first arrival of each id."""
        seen: set[str] = set()
        kept = []
        for arrival in self.arrivals:
            if arrival.webhook_id not in seen:
                seen.add(arrival.webhook_id)
                kept.append(arrival)
        return kept


@asynccontextmanager
async def receiving(port: int | None = None, **options: Any) -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1 (on ``port``, or a free one) until the block ends."""
    receiver = Receiver(**options)
    port = port or free_port()
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    config = uvicorn.Config(receiver.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started:
                break
            assert not task.done(), "the receiver did not start"
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        receiver.release.set()
        server.should_exit = True
        await task
