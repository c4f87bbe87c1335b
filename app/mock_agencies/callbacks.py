"""Signed callbacks from an agency to the single window (Standard Webhooks).

Headers ``webhook-id`` (the dedupe key; the same on every retry of one event), ``webhook-timestamp`` (unix
seconds, fresh on each try) and ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(secret,
``f"{id}.{timestamp}.{body}"``)), over the exact body bytes sent, with the current secret of the agency that
sends it (SW_<AGENCY>_CALLBACK_SECRETS). A failed delivery is retried with doubling
pauses and logged; it never raises into the app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import httpx

from app.mock_agencies.store import CallbackState
from app.webhooks import sign

log = logging.getLogger(__name__)

MAX_PAUSE_S = 30.0


class CallbackSender:
    def __init__(
        self,
        secrets: Mapping[str, str],
        attempts: int,
        backoff_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 10.0,
    ) -> None:
        self.secrets = secrets  # agency -> the secret its callbacks are signed with
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.transport = transport
        self.clock = clock
        self.timeout_s = timeout_s
        # One client for every callback: building one loads the CA bundle (~27 ms of CPU here), and each would
        # open a new connection.
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.transport, timeout=self.timeout_s)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def headers(self, callback: CallbackState) -> dict[str, str]:
        timestamp = int(self.clock())
        return {
            "content-type": "application/json",
            "webhook-id": callback.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.secrets[callback.agency], callback.webhook_id, timestamp, callback.body),
        }

    async def deliver(self, callback: CallbackState) -> bool:
        """Post the callback until a 2xx or the tries run out; records the outcome on ``callback``."""
        callback.status = "pending"
        http = self.client()
        for attempt in range(1, self.attempts + 1):
            callback.attempts += 1
            try:
                response = await http.post(callback.url, content=callback.body, headers=self.headers(callback))
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    callback.status = "delivered"
                    log.info("callback %s delivered to %s", callback.webhook_id, callback.url)
                    return True
                outcome = f"HTTP {response.status_code}"
            log.warning(
                "callback %s to %s failed (try %d of %d): %s",
                callback.webhook_id,
                callback.url,
                attempt,
                self.attempts,
                outcome,
            )
            if attempt < self.attempts:
                await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_PAUSE_S))
        callback.status = "failed"
        log.error("callback %s to %s given up after %d tries", callback.webhook_id, callback.url, self.attempts)
        return False
