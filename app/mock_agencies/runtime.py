"""One set of mock agencies: settings, the store, fault injection and the customs release callbacks.

``MockAgencies.declare`` is the whole life of one ``POST /mock/{agency}/declarations``: count it, add the
configured latency, refuse a malformed call (400 / 422), inject a fault (503 / 429 / hang → 504, before
anything is recorded), then answer once per idempotency key — the rules decide under the store's lock, and
the same key later gets the same answer. ``declare_batch`` (``…/declarations/batch``) does the same for up to
100 declarations in one call: latency and faults once per call, a result per declaration. A customs answer
that holds the declaration for inspection owes a signed release callback, sent after
``SW_MOCK_INSPECTION_DELAY_MS``; one that never landed is sent again when the same declaration is pushed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.adapters.base import MAX_BATCH_SIZE
from app.config import Settings
from app.crypto.certificates import CertificateInfo, read_certificate
from app.crypto.identity import signing_identity
from app.mock_agencies import rules
from app.mock_agencies.callbacks import CallbackSender
from app.mock_agencies.faults import FAILURES, Fault, draw_fault
from app.mock_agencies.rules import after_release
from app.mock_agencies.store import AGENCIES, CallbackState, MockAgencyStore, StoredAnswer

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_CALLBACK_NAMESPACE = uuid.UUID("0f6f0c1e-4d9b-4f0e-9a57-6c7d0b5e2a11")


@dataclass(frozen=True)
class AgencyResponse:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


def problem(status: int, code: str, title: str, detail: str, **headers: str) -> AgencyResponse:
    body = {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}
    return AgencyResponse(status, body, dict(headers), PROBLEM_JSON)


class MalformedPackage(ValueError):
    """The call cannot be processed at all (permanent 4xx); business faults are ``100`` receipts instead."""


class MockAgencies:
    def __init__(
        self,
        settings: Settings,
        callback_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.store = MockAgencyStore()
        self.rng = random.Random(settings.mock_seed)  # noqa: S311 - reproducible fault injection, not crypto
        self.callbacks = CallbackSender(
            {agency: secrets[0] for agency in AGENCIES if (secrets := settings.callback_secrets(agency))},
            attempts=settings.mock_callback_attempts,
            backoff_s=settings.mock_callback_backoff_s,
            transport=callback_transport,
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self._tasks: set[asyncio.Task[None]] = set()
        self._service_certificate: CertificateInfo | None = None

    def service_certificate(self) -> CertificateInfo:
        """The single window's certificate, which its signed CEB621 must verify with (read on first use)."""
        if self._service_certificate is None:
            path = self.settings.mock_customs_certificate_path
            self._service_certificate = (
                read_certificate(path.read_bytes()) if path is not None else signing_identity(self.settings).certificate
            )
        return self._service_certificate

    # --- one call ---------------------------------------------------------------------------------------

    async def _received(self, agency: str, idempotency_key: str | None) -> str | AgencyResponse:
        """A keyed call arrives: counted, the configured latency, then its key (or the 400 without one)."""
        self.store.count_request(agency)
        if self.settings.mock_latency_ms:
            await asyncio.sleep(self.settings.mock_latency_ms / 1000)
        key = (idempotency_key or "").strip()
        if not key or len(key) > 255:
            return problem(400, "IDEMPOTENCY_KEY_REQUIRED", "Idempotency-Key required", "Send 1..255 characters.")
        return key

    async def declare(self, agency: str, idempotency_key: str | None, raw_body: bytes) -> AgencyResponse:
        key = await self._received(agency, idempotency_key)
        if isinstance(key, AgencyResponse):
            return key
        try:
            package = self._check(agency, _json(raw_body))
        except MalformedPackage as exc:
            return problem(422, "MALFORMED_PACKAGE", "The declaration package cannot be processed", str(exc))

        fault = draw_fault(self.rng, self.settings.mock_failure_rate, self.settings.mock_slow_answer_rate)
        if fault in FAILURES:
            self.store.count_fault(agency, fault)
            return await self._fail(fault)

        stored = await self._answer(agency, key, package, hashlib.sha256(raw_body).hexdigest())
        await self._hold_if_slow(agency, fault)
        return AgencyResponse(200, stored.body)

    async def declare_batch(self, agency: str, raw_body: bytes) -> AgencyResponse:
        """``POST /mock/{agency}/declarations/batch``: latency and faults per call, then an answer per
        declaration, in order, as the single route would give it — deduped on each one's ``dispatchId``.
        A declaration that cannot be processed is a problem in its slot; the others are answered."""
        self.store.count_request(agency, batch=True)
        if self.settings.mock_latency_ms:
            await asyncio.sleep(self.settings.mock_latency_ms / 1000)
        try:
            declarations = _batch(_json(raw_body))
        except MalformedPackage as exc:
            return problem(422, "MALFORMED_BATCH", "The batch cannot be processed", str(exc))

        fault = draw_fault(self.rng, self.settings.mock_failure_rate, self.settings.mock_slow_answer_rate)
        if fault in FAILURES:
            self.store.count_fault(agency, fault)
            return await self._fail(fault)

        results = [await self._answer_item(agency, item) for item in declarations]
        await self._hold_if_slow(agency, fault)
        return AgencyResponse(200, {"agency": agency, "results": results})

    async def _answer_item(self, agency: str, item: Any) -> dict[str, Any]:
        key = item.get("dispatchId") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key.strip() or len(key) > 255:
            detail = "Each declaration needs dispatchId (1..255 characters), its idempotency key."
            body = problem(400, "IDEMPOTENCY_KEY_REQUIRED", "dispatchId required", detail).body
            return {"dispatchId": key if isinstance(key, str) else None, **body}
        try:
            package = self._check(agency, item)
        except MalformedPackage as exc:
            body = problem(422, "MALFORMED_PACKAGE", "The declaration package cannot be processed", str(exc)).body
            return {"dispatchId": key, **body}
        stored = await self._answer(agency, key.strip(), package, _item_sha256(package))
        return {"status": 200, **stored.body}

    async def _answer(self, agency: str, key: str, package: Mapping[str, Any], request_sha256: str) -> StoredAnswer:
        """The answer for ``key`` (decided now, or the one given before); a release callback owed is sent."""
        stored, replayed = await self.store.answer_once(
            agency, key, request_sha256, lambda: self._decide(agency, key, package, request_sha256)
        )
        callback = stored.callback
        if callback is not None and (not replayed or callback.status == "failed"):
            self._schedule_release(callback, self.settings.mock_inspection_delay_ms / 1000)
        return stored

    async def _hold_if_slow(self, agency: str, fault: Fault | None) -> None:
        if fault is Fault.SLOW_ANSWER:
            self.store.count_fault(agency, fault)
            await asyncio.sleep(self.settings.mock_hang_s)  # recorded, but the caller gives up before the reply

    def stats(self, agency: str) -> dict[str, Any]:
        return self.store.ledger(agency).stats(agency)

    def answers(self, agency: str) -> list[dict[str, Any]]:
        return self.store.ledger(agency).answer_list()

    @staticmethod
    def _check(agency: str, package: Any) -> Mapping[str, Any]:
        if not isinstance(package, dict):
            raise MalformedPackage("the body must be one JSON object, the declaration package")
        if package.get("agency") not in (None, agency):
            raise MalformedPackage(f"the package is for {package.get('agency')!r}, sent to {agency!r}")
        if not isinstance(package.get("recordId"), str) or not package["recordId"].strip():
            raise MalformedPackage("recordId (string) is required")
        if agency == "customs":
            url = urlsplit(str(package.get("callbackUrl") or ""))
            if url.scheme not in ("http", "https") or not url.netloc:
                raise MalformedPackage("customs needs callbackUrl (http or https) to answer after an inspection")
        return package

    async def _fail(self, fault: Fault) -> AgencyResponse:
        if fault is Fault.THROTTLED:
            return problem(429, "AGENCY_BUSY", "Too many requests", "Try again later.", **{"Retry-After": "1"})
        if fault is Fault.HANG:
            await asyncio.sleep(self.settings.mock_hang_s)
            return problem(504, "AGENCY_TIMEOUT", "The agency did not answer in time", "Try again later.")
        return problem(503, "AGENCY_UNAVAILABLE", "The agency is unavailable", "Try again later.")

    # --- deciding (under the store's lock: no awaits) -----------------------------------------------------

    def _decide(self, agency: str, key: str, package: Mapping[str, Any], request_sha256: str) -> StoredAnswer:
        now = self.clock()
        decision = self._rule(agency, package, now)
        stamp = rules.return_time(now)
        body: dict[str, Any] = {
            "agency": agency,
            "dispatchId": str(package.get("dispatchId") or key),
            "receipts": [_receipt_json(r, stamp) for r in decision.receipts],
        }
        known = self.store.inventories.get(rules.record_id(package)) if agency == "customs" else None
        if known is not None:  # customs numbers the inventory it accepted (清单编号), on each receipt
            body["receipts"] = [{**receipt, "invtNo": known.invt_no} for receipt in body["receipts"]]
        if decision.tax_bill is not None:
            body["taxBill"] = decision.tax_bill
        if decision.settlement is not None:
            body["settlement"] = decision.settlement
        callback = (
            self._release_callback(key, package, body["dispatchId"], now) if decision.held_for_inspection else None
        )
        return StoredAnswer(body, request_sha256, callback, record_id=rules.record_id(package))

    def _rule(self, agency: str, package: Mapping[str, Any], now: datetime) -> rules.AgencyDecision:
        if agency == "customs":
            inspect = rules.selected_for_inspection(package)
            decision = rules.customs_decision(package, inspect, self.service_certificate(), now)
            self._remember_inventory(package, decision, now)
            return decision
        if agency == "inspection":
            return rules.inspection_decision(package)
        if agency == "tax":
            buyer, year = rules.quota_key(package, now)
            used = self.store.annual_total(buyer, year)
            decision = rules.tax_decision(package, used, now, self.settings.single_limit, self.settings.annual_limit)
            if decision.quota_use is not None:
                use = decision.quota_use
                self.store.add_to_annual_total(use.buyer_id_number, use.year, use.dutiable_value)
                self.store.quota_uses[rules.record_id(package)] = use
            return decision
        if agency == "fx":
            return rules.fx_decision(package, now, self.settings.mock_fx_check_id_checksum)
        raise ValueError(f"unknown agency {agency!r}; known: {AGENCIES}")

    def _remember_inventory(self, package: Mapping[str, Any], decision: rules.AgencyDecision, now: datetime) -> None:
        """An accepted inventory is kept (released now, or when the inspection ends) for cancels and returns."""
        if any(r.return_status == "100" for r in decision.receipts):
            return
        known = after_release.known_inventory(package)
        # The number customs put on its receipts (rules.customs_decision), which cancels and returns then quote.
        known.invt_no = next((r.invt_no for r in decision.receipts if r.invt_no), rules.inventory_number(package, now))
        released = any(r.return_status == "800" for r in decision.receipts)
        if decision.held_for_inspection:
            released = True
            now += timedelta(milliseconds=self.settings.mock_inspection_delay_ms)
        known.released_at = now if released else None
        self.store.inventories[rules.record_id(package)] = known

    # --- cancels (CEB623) and returns (CEB625) of an inventory customs holds ----------------------------

    async def request(self, kind: str, idempotency_key: str | None, raw_body: bytes) -> AgencyResponse:
        """``POST /mock/customs/cancels`` or ``…/refunds``: as a declaration — counted, latency, faults, one
        answer per key — decided on what customs remembers of the inventory (``rules.after_release``)."""
        key = await self._received("customs", idempotency_key)
        if isinstance(key, AgencyResponse):
            return key
        try:
            package = _json(raw_body)
            if not isinstance(package, dict) or not rules.record_id(package) or not package.get("message"):
                raise MalformedPackage("the body must be one JSON object with recordId and message (the signed XML)")
        except MalformedPackage as exc:
            return problem(422, "MALFORMED_PACKAGE", "The request cannot be processed", str(exc))
        fault = draw_fault(self.rng, self.settings.mock_failure_rate, self.settings.mock_slow_answer_rate)
        if fault in FAILURES:
            self.store.count_fault("customs", fault)
            return await self._fail(fault)
        stored, _ = await self.store.answer_once(
            "customs",
            f"{kind}:{key}",
            hashlib.sha256(raw_body).hexdigest(),
            lambda: self._decide_request(kind, key, package, hashlib.sha256(raw_body).hexdigest()),
        )
        await self._hold_if_slow("customs", fault)
        return AgencyResponse(200, stored.body)

    def _decide_request(self, kind: str, key: str, package: Mapping[str, Any], request_sha256: str) -> StoredAnswer:
        now = self.clock()
        record = rules.record_id(package)
        known = self.store.inventories.get(record)
        message = package.get("message")
        if kind == "cancel":
            decision = after_release.cancel_decision(message, known, self.service_certificate())
        else:
            decision = after_release.refund_decision(message, known, self.service_certificate(), now)
        if known is not None and decision.receipts[-1].return_status == "399":
            known.state = "cancelled" if kind == "cancel" else "returned"
            if kind == "return":
                known.returned = after_release.returned_quantities(message)
            self.store.give_back(record, after_release.returned_share(known))
        stamp = rules.return_time(now)
        body = {
            "agency": "customs",
            "requestId": key,
            "receipts": [_receipt_json(r, stamp) for r in decision.receipts],
        }
        return StoredAnswer(body, request_sha256, record_id=record)

    def _release_callback(self, key: str, package: Mapping[str, Any], dispatch_id: str, now: datetime) -> CallbackState:
        released_at = now + timedelta(milliseconds=self.settings.mock_inspection_delay_ms)
        release = dataclasses.replace(rules.RELEASE_AFTER_INSPECTION, invt_no=rules.inventory_number(package, now))
        body = {
            "agency": "customs",
            "recordId": rules.record_id(package),
            "dispatchId": dispatch_id,
            "receipts": [_receipt_json(release, rules.return_time(released_at))],
        }
        return CallbackState(
            agency="customs",
            url=str(package["callbackUrl"]),
            webhook_id=f"msg_{uuid.uuid5(_CALLBACK_NAMESPACE, f'customs-release:{key}').hex}",
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        )

    # --- release callbacks ------------------------------------------------------------------------------

    def _schedule_release(self, callback: CallbackState, delay_s: float) -> None:
        callback.status = "pending"  # set before yielding, so concurrent replays schedule it once
        task = asyncio.create_task(self._release_later(callback, delay_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release_later(self, callback: CallbackState, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
            await self.callbacks.deliver(callback)
        except asyncio.CancelledError:
            raise
        except Exception:
            callback.status = "failed"
            log.exception("callback %s to %s failed unexpectedly", callback.webhook_id, callback.url)

    async def wait_for_callbacks(self) -> None:
        """Until every scheduled callback has been delivered or given up (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.callbacks.aclose()


def _json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedPackage(f"the body is not JSON: {exc}") from exc


def _batch(body: Any) -> list[Any]:
    declarations = body.get("declarations") if isinstance(body, dict) else None
    if not isinstance(declarations, list) or not 1 <= len(declarations) <= MAX_BATCH_SIZE:
        raise MalformedPackage(f'the body must be {{"declarations": [1..{MAX_BATCH_SIZE} declaration packages]}}')
    return declarations


def _item_sha256(package: Mapping[str, Any]) -> str:
    """A declaration's fingerprint inside a batch (its bytes are not its own): canonical JSON."""
    canonical = json.dumps(package, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _receipt_json(receipt: rules.Receipt, stamp: str) -> dict[str, str]:
    answer = {"returnStatus": receipt.return_status, "returnInfo": receipt.return_info, "returnTime": stamp}
    if receipt.invt_no:
        answer["invtNo"] = receipt.invt_no
    return answer
