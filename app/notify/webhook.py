"""Sending one delivery over HTTP: Standard Webhooks headers, the SSRF guard again (DNS may have changed since
registration) with the connection pinned to the addresses it checked, a whole-request timeout so that a
hanging endpoint holds only its own slot, redirects not followed, and at most a few bytes of the answer read."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.notify.pinning import PinnedTransport, pinned
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


async def post_webhook(
    client: httpx.AsyncClient, claimed: Claimed, *, allow_private: bool, timeout_s: float
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
            request = client.build_request("POST", claimed.url, content=claimed.body, headers=headers)
            with pinned(target.host, addresses):  # the connect, if one is made, is inside send()
                response = await client.send(request, stream=True, follow_redirects=False)
            try:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= BODY_READ_LIMIT:
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        return result(None, f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return result(None, f"{type(exc).__name__}: {exc}"[:300])
    code = response.status_code
    if 200 <= code < 300:
        return result(code, None)
    if 300 <= code < 400:
        return result(code, f"HTTP {code} (redirects are not followed)")
    return result(code, f"HTTP {code}")


# Connection pool lanes (app/notify/pinning.py LanePool): about 8 connections each at full concurrency.
CLIENT_LANES = 16


def webhook_client() -> httpx.AsyncClient:
    # Every connection may stay open, so that a busy worker reuses them rather than connecting anew; an idle
    # one is closed after httpx's keep-alive expiry.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    # Per-phase limits under the whole-request timeout that post_webhook puts around each delivery.
    timeout = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=30.0)
    return httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=PinnedTransport(limits, CLIENT_LANES)
    )
