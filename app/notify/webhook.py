"""Sending one delivery over HTTP: Standard Webhooks headers, the SSRF guard again (DNS may have changed since
registration), a whole-request timeout so that a hanging endpoint holds only its own slot, redirects not
followed, and at most a few bytes of the answer read."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.notify.target_guard import TargetRefused, allowed_target
from app.services.webhook_delivery import AttemptResult, Claimed
from app.tls import client_tls_context
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
        await allowed_target(claimed.url, allow_private)
    except TargetRefused as exc:
        return result(None, f"refused: {exc}")
    headers = webhook_headers(claimed, int(time.time()))
    try:
        async with asyncio.timeout(timeout_s):
            request = client.build_request("POST", claimed.url, content=claimed.body, headers=headers)
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


def webhook_client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    # Per-phase limits under the whole-request timeout that post_webhook puts around each delivery.
    timeout = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=30.0)
    return httpx.AsyncClient(
        timeout=timeout, limits=limits, follow_redirects=False, trust_env=False, verify=client_tls_context()
    )
