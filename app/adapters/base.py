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


# A CEB621 message carries at most 100 inventories; an agency batch follows the same bound.
MAX_BATCH_SIZE = 100


@runtime_checkable
class BatchAgencyAdapter(AgencyAdapter, Protocol):
    """Also delivers up to ``MAX_BATCH_SIZE`` declarations in one call: a result per ``(dispatch_id, package)``,
    in the same order. A failure of the whole call is raised (it applies to every item); a failure of one
    declaration is that item's ``AgencyError``. Optional: the dispatcher calls ``submit`` per declaration
    for an adapter without it (``app/adapters/batch.py``), so adapters written before batches keep working."""

    async def submit_batch(self, items: list[tuple[str, dict[str, Any]]]) -> list[AgencyAnswer | AgencyError]: ...


# Where an after-release request goes on an agency (docs/adapters.md): a cancel (CEB623) or a return (CEB625).
REQUEST_PATHS = {"cancel": "/cancels", "return": "/refunds"}


@runtime_checkable
class AfterReleaseAdapter(Protocol):
    """Also passes the declarant's cancel (撤销, CEB623) or return (退货, CEB625) of a declared inventory to the
    agency and reads its answer (CEB624 / CEB626 ``returnStatus``: 120 / 399 approved, 100 or negative
    refused). ``request_id`` is the agency-side idempotency key. Optional: only customs needs it, and an
    adapter without it leaves the request undelivered (dead, with that reason)."""

    async def submit_request(self, kind: str, package: dict[str, Any], request_id: str) -> AgencyAnswer: ...


RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


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
    """POST ``{base_url}/declarations`` with the package this agency needs, and read its receipts; or
    ``{base_url}/declarations/batch`` with up to ``MAX_BATCH_SIZE`` of them (docs/adapters.md)."""

    name = "agency"

    def __init__(self, name: str, client: httpx.AsyncClient, base_url: str) -> None:
        self.name = name
        self.client = client
        self.base_url = base_url.rstrip("/")

    def payload(self, package: dict[str, Any]) -> dict[str, Any]:
        """What this agency is sent; subclasses keep only the parts their agency needs."""
        return package

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> AgencyAnswer:
        response = await self._post("/declarations", self.payload(package), {"Idempotency-Key": dispatch_id})
        return self.read_answer(response)

    async def submit_request(self, kind: str, package: dict[str, Any], request_id: str) -> AgencyAnswer:
        """POST ``{base_url}/cancels`` or ``{base_url}/refunds`` with the request (its signed CEB623 / CEB625)."""
        response = await self._post(REQUEST_PATHS[kind], package, {"Idempotency-Key": request_id})
        return self.read_answer(response)

    async def submit_batch(self, items: list[tuple[str, dict[str, Any]]]) -> list[AgencyAnswer | AgencyError]:
        if not items:
            return []
        if len(items) > MAX_BATCH_SIZE:
            raise ValueError(f"{len(items)} declarations in one batch; at most {MAX_BATCH_SIZE}")
        # Each declaration carries its own key (its dispatchId): a retried call may group them differently.
        body = {"declarations": [{**self.payload(package), "dispatchId": key} for key, package in items]}
        response = await self._post("/declarations/batch", body, {})
        return read_batch_answer(response, [key for key, _ in items])

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """The call; what fails it as a whole is raised (retryable: no answer, 408, 429, 5xx)."""
        try:
            response = await self.client.post(f"{self.base_url}{path}", json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableAgencyError(f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise RetryableAgencyError(f"transport: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if is_retryable_status(status):
            raise RetryableAgencyError(
                f"HTTP {status}", status, retry_after_seconds(response.headers.get("retry-after"))
            )
        if status >= 400:
            raise PermanentAgencyError(f"HTTP {status}: {response.text[:300]}", status)
        return response

    def read_answer(self, response: httpx.Response) -> AgencyAnswer:
        try:
            body = response.json()
            receipts = read_receipts(body["receipts"])
        except (ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
            raise PermanentAgencyError(f"unreadable answer: {exc}"[:1000], response.status_code) from exc
        return AgencyAnswer(receipts=receipts, body=body)


def read_batch_answer(response: httpx.Response, keys: list[str]) -> list[AgencyAnswer | AgencyError]:
    """``{"results": [...]}``, one per declaration sent, matched by ``dispatchId``. An item's ``status`` reads
    as an HTTP status of its own: 2xx an answer, 408/429/5xx retryable, any other permanent. An unreadable
    body, or no result for a declaration, is permanent for it (as an unreadable single answer is)."""
    try:
        results = response.json()["results"]
        if not isinstance(results, list):
            raise TypeError("results must be a list")
        by_key = {str(r["dispatchId"]): r for r in results if isinstance(r, dict) and "dispatchId" in r}
    except (ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
        error = PermanentAgencyError(f"unreadable answer: {exc}"[:1000], response.status_code)
        return [error for _ in keys]
    return [read_batch_item(by_key.get(key)) for key in keys]


def read_batch_item(item: dict[str, Any] | None) -> AgencyAnswer | AgencyError:
    if item is None:
        return PermanentAgencyError("unreadable answer: no result for this declaration")
    try:
        status = int(item.get("status", 200))
        if 200 <= status < 300:
            return AgencyAnswer(receipts=read_receipts(item["receipts"]), body=item)
    except (ValueError, KeyError, TypeError) as exc:
        return PermanentAgencyError(f"unreadable answer: {exc}"[:1000])
    problem = _text(json.dumps({k: item[k] for k in ("code", "detail") if k in item}, ensure_ascii=False), 300)
    if is_retryable_status(status):
        return RetryableAgencyError(f"item {status}: {problem}", status, retry_after_seconds(item.get("retryAfter")))
    return PermanentAgencyError(f"item {status}: {problem}", status)


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
