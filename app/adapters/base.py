"""The agency adapter seam (ARCHITECTURE.md §Adapters).

An adapter turns a declaration package into one agency's request and reads the agency's answer. Transport
is an injected ``httpx.AsyncClient`` (tests pass ``httpx.MockTransport`` or talk to a live mock agency).
Which class serves which agency and where it lives come from settings (``app/adapters/registry.py``); a
new agency is a new class named in configuration, never an edit to the core. The wire contract is in
docs/adapters.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from app.db import utcnow


@dataclass(frozen=True)
class AgencyReceipt:
    """One agency answer with its CEB ``returnStatus`` (120, 399, 500, 800, 100, or a negative error code)."""

    return_status: str
    return_info: str
    return_time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgencyAnswer:
    receipts: list[AgencyReceipt]
    body: dict[str, Any] = field(default_factory=dict)


class AgencyError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableAgencyError(AgencyError):
    """Timeouts, connection errors, 408, 429 and 5xx: the dispatch is tried again later."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after_s = retry_after_s


class PermanentAgencyError(AgencyError):
    """Any other 4xx, or an answer we cannot read: the dispatch goes to the dead-letter state."""


@runtime_checkable
class AgencyAdapter(Protocol):
    """Delivers one declaration to one agency. ``dispatch_id`` is the agency-side idempotency key."""

    name: str

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> AgencyAnswer: ...


RETRYABLE_STATUSES = frozenset({408, 429})


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max((parsedate_to_datetime(value) - utcnow()).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


class HttpAgencyAdapter:
    """POST ``{base_url}/declarations`` with the package this agency needs, and read its receipts."""

    name = "agency"

    def __init__(self, name: str, client: httpx.AsyncClient, base_url: str) -> None:
        self.name = name
        self.client = client
        self.base_url = base_url.rstrip("/")

    def payload(self, package: dict[str, Any]) -> dict[str, Any]:
        """What this agency is sent; subclasses keep only the parts their agency needs."""
        return package

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> AgencyAnswer:
        try:
            response = await self.client.post(
                f"{self.base_url}/declarations",
                json=self.payload(package),
                headers={"Idempotency-Key": dispatch_id},
            )
        except httpx.TimeoutException as exc:
            raise RetryableAgencyError(f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise RetryableAgencyError(f"transport: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            raise RetryableAgencyError(
                f"HTTP {status}", status, retry_after_seconds(response.headers.get("retry-after"))
            )
        if status >= 400:
            raise PermanentAgencyError(f"HTTP {status}: {response.text[:300]}", status)
        return self.read_answer(response)

    def read_answer(self, response: httpx.Response) -> AgencyAnswer:
        try:
            body = response.json()
            receipts = read_receipts(body["receipts"])
        except (ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
            raise PermanentAgencyError(f"unreadable answer: {exc}"[:1000], response.status_code) from exc
        return AgencyAnswer(receipts=receipts, body=body)


_RETURN_STATUS = re.compile(r"^-?\d{1,9}$")
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text(value: Any, limit: int) -> str:
    return _NOT_TEXT.sub("", str(value))[:limit]


def read_receipts(items: Any) -> list[AgencyReceipt]:
    """Agency receipts from outside (a reply or a callback), checked before they reach the database:
    ``returnStatus`` a CEB code (digits, maybe negative), texts bounded and free of control characters."""
    if not isinstance(items, list) or not items:
        raise ValueError("receipts must be a non-empty list")
    receipts = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a receipt must be an object")
        status = str(item["returnStatus"])
        if not _RETURN_STATUS.match(status):
            raise ValueError(f"returnStatus {status[:20]!r} is not a CEB code")
        return_time = item.get("returnTime")
        extra = json.loads(
            _NOT_TEXT.sub(
                "", json.dumps({k: v for k, v in item.items() if k not in ("returnStatus", "returnInfo", "returnTime")})
            )
        )
        receipts.append(
            AgencyReceipt(
                return_status=status,
                return_info=_text(item.get("returnInfo", ""), 1000),
                return_time=_text(return_time, 17) if return_time is not None else None,
                extra=extra,
            )
        )
    return receipts
