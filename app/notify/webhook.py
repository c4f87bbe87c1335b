"""Sending one delivery over HTTP: Standard Webhooks headers, the SSRF guard again (DNS may have changed since
registration) with the connection pinned to the addresses it checked, a whole-request timeout so that a
hanging endpoint holds only its own slot, redirects not followed, and at most a few bytes of the answer read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpcore

from app.notify.pinning import LanePool, pinned
from app.notify.target_guard import TargetRefused, checked_addresses
from app.services.webhook_delivery import AttemptResult, Claimed
from app.webhooks import sign_with_each

BODY_READ_LIMIT = 1024  # of the endpoint's answer: its status is what counts


def webhook_headers(claimed: Claimed, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": claimed.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_with_each(claimed.secrets, claimed.webhook_id, timestamp, claimed.body),
        "content-type": claimed.content_type,
        "user-agent": "single-window-webhooks/1",
        "sw-event-type": claimed.event_type,
    }


# httpcore's errors for a request that did not get an answer (httpx wraps the same ones under the same names).
_SEND_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
# Per phase, under the whole-request timeout that post_webhook puts around each delivery.
_PHASE_TIMEOUTS = {"connect": 5.0, "read": 30.0, "write": 10.0, "pool": 30.0}
# Connection pool lanes (app/notify/pinning.py LanePool): about 8 connections each at full concurrency.
CLIENT_LANES = 16


class WebhookSender:
    """The delivery worker's HTTP client: httpcore's connection pools — the transport under httpx — in lanes,
    connecting only to the addresses the SSRF guard checked (app/notify/pinning.py).

    Not an ``httpx.AsyncClient``: a webhook is one POST of prepared bytes, and the client's layer above the
    pool (its request and response models, URL handling, auth, cookies and redirect machinery) was a third
    of the worker's CPU per delivery. What it did that is needed here is done here: the timeouts, no
    redirects (httpcore follows none), the answer read only up to a limit."""

    def __init__(self, lanes: int = CLIENT_LANES) -> None:
        # Every connection may stay open (until 5 s idle), so that a busy worker reuses them rather than
        # connecting anew.
        self.pool = LanePool(200, lanes)

    @contextlib.asynccontextmanager
    async def post(self, url: str, headers: dict[str, str], body: bytes) -> AsyncIterator[httpcore.Response]:
        """The answer's status and headers, its body to be read from the stream (connects only under
        ``pinned``)."""
        encoded = [(name.encode(), value.encode()) for name, value in headers.items()]
        async with self.pool.stream(
            "POST", url, headers=encoded, content=body, extensions={"timeout": _PHASE_TIMEOUTS}
        ) as response:
            yield response

    async def aclose(self) -> None:
        await self.pool.aclose()


def webhook_client() -> WebhookSender:
    return WebhookSender()


async def post_webhook(
    client: WebhookSender, claimed: Claimed, *, allow_private: bool, timeout_s: float
) -> AttemptResult:
    started = time.monotonic()

    def result(status_code: int | None, error: str | None) -> AttemptResult:
        return AttemptResult(claimed, status_code, error, int((time.monotonic() - started) * 1000))

    try:
        target, addresses = await checked_addresses(claimed.url, allow_private)
    except TargetRefused as exc:
        return result(None, f"refused: {exc}")
    headers = webhook_headers(claimed, int(time.time()))
    try:
        async with asyncio.timeout(timeout_s):
            with pinned(target.host, addresses):  # the connect, if one is made, is inside the request
                async with client.post(claimed.url, headers, claimed.body) as response:
                    code = response.status
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if read >= BODY_READ_LIMIT:
                            break
    except TimeoutError:
        return result(None, f"no answer within {timeout_s:g} s")
    except _SEND_ERRORS as exc:
        return result(None, f"{type(exc).__name__}: {exc}"[:300])
    if 200 <= code < 300:
        return result(code, None)
    if 300 <= code < 400:
        return result(code, f"HTTP {code} (redirects are not followed)")
    return result(code, f"HTTP {code}")
