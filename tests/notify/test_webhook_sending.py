"""One webhook POST (app/notify/webhook.py) against a real HTTP server on a free port: what an attempt records
for an endpoint that redirects, one that answers an endless body, one that hangs, one that is not there, and
the Standard Webhooks headers a receiver gets."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from app.notify.webhook import BODY_READ_LIMIT, post_webhook, webhook_client
from app.services.webhook_delivery import Claimed
from app.webhooks import sign
from tests.live import free_port

SECRET = "whsec_sending"


def endpoint() -> tuple[FastAPI, list[Request], dict[str, int]]:
    app = FastAPI()
    seen: list[Request] = []
    streamed = {"bytes": 0}

    @app.post("/ok")
    async def ok(request: Request) -> Response:
        request.state.body = await request.body()
        seen.append(request)
        return Response(status_code=204)

    @app.post("/redirect")
    async def redirect() -> Response:
        return RedirectResponse("/ok", status_code=307)

    @app.post("/endless")
    async def endless() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            while True:  # until the client goes away
                streamed["bytes"] += 4096
                yield b"x" * 4096
                await asyncio.sleep(0.001)

        return StreamingResponse(chunks(), status_code=200)

    @app.post("/hang")
    async def hang() -> Response:
        await asyncio.sleep(60)
        return Response(status_code=204)

    return app, seen, streamed


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the endpoint did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


def claimed(url: str, body: bytes = b'{"type":"status_changed"}') -> Claimed:
    return Claimed(uuid.uuid4(), uuid.uuid4(), url, None, [SECRET], "status_changed", body, "application/json")


async def test_what_each_kind_of_endpoint_leaves_in_the_attempt() -> None:
    app, seen, streamed = endpoint()
    sender = webhook_client()
    try:
        async with serving(app) as base:
            delivered = await post_webhook(sender, claimed(f"{base}/ok"), allow_private=True, timeout_s=5)
            assert (delivered.delivered, delivered.status_code, delivered.error) == (True, 204, None)
            request = seen[0]
            webhook_id, timestamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
            assert webhook_id == delivered.claimed.webhook_id
            assert request.headers["webhook-signature"] == sign(SECRET, webhook_id, timestamp, request.state.body)
            assert request.headers["content-type"] == "application/json"
            assert request.headers["host"] == base.removeprefix("http://")

            moved = await post_webhook(sender, claimed(f"{base}/redirect"), allow_private=True, timeout_s=5)
            assert (moved.delivered, moved.status_code) == (False, 307)
            assert moved.error == "HTTP 307 (redirects are not followed)"
            assert len(seen) == 1  # not followed to /ok

            started = time.monotonic()
            endless = await post_webhook(sender, claimed(f"{base}/endless"), allow_private=True, timeout_s=5)
            assert (endless.delivered, endless.status_code) == (True, 200)
            assert time.monotonic() - started < 4  # the answer was not read to its end (it has none)
            assert streamed["bytes"] < 64 * BODY_READ_LIMIT

            hung = await post_webhook(sender, claimed(f"{base}/hang"), allow_private=True, timeout_s=0.3)
            assert (hung.delivered, hung.status_code, hung.error) == (False, None, "no answer within 0.3 s")

        nobody = await post_webhook(sender, claimed(f"{base}/ok"), allow_private=True, timeout_s=5)
        assert not nobody.delivered
        assert nobody.status_code is None
        assert nobody.error is not None
        assert nobody.error.startswith("ConnectError")
    finally:
        await sender.aclose()
