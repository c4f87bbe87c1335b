"""The mock agencies over HTTP (ASGI): the contract's answers, dedupe, the tax quota, faults and callbacks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.mock_agencies import create_mock_agencies_router
from tests.mock_agencies.conftest import AgencyClientFactory, mock_settings
from tests.mock_agencies.packages import CALLBACK_URL, INSPECT, package

PASSES_INSPECTION = "00000000-0000-4000-8000-000000000001"  # released: the package decides, not the agency


async def declare(
    http: httpx.AsyncClient, agency: str, body: Any, key: str | None = None, **headers: str
) -> httpx.Response:
    key = key if key is not None else str(body.get("dispatchId") or uuid.uuid4())
    sent = {"Idempotency-Key": key, **headers} if key else headers
    return await http.post(f"/mock/{agency}/declarations", json=body, headers=sent)


async def stats(http: httpx.AsyncClient, agency: str) -> dict[str, Any]:
    response = await http.get(f"/mock/{agency}/stats")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def statuses(response: httpx.Response) -> list[str]:
    return [r["returnStatus"] for r in response.json()["receipts"]]


# --- the contract's answers ------------------------------------------------------------------------------


async def test_each_agency_answers_per_the_contract(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        for agency, expected in (("customs", ["120", "399", "800"]), ("inspection", ["120"]), ("tax", ["120"]),
                                 ("fx", ["120"])):  # fmt: skip
            body = package(agency, record_id=PASSES_INSPECTION)
            response = await declare(http, agency, body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["agency"] == agency
            assert answer["dispatchId"] == body["dispatchId"]
            assert statuses(response) == expected
            for receipt in answer["receipts"]:
                assert len(receipt["returnTime"]) == 17
                assert receipt["returnTime"].isdigit()
            assert ("taxBill" in answer) == (agency == "tax")
            assert ("settlement" in answer) == (agency == "fx")
        tax_answer = (await declare(http, "tax", package("tax"))).json()
        assert tax_answer["taxBill"]["taxHeadRd"]["taxTotal"] == "46.12"
        assert tax_answer["taxBill"]["taxListRd"][0]["taxPrice"] == "200.00"


async def test_a_rejection_is_an_answer_too(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        body = package("customs", inventory={"tradeMode": "0110"})
        response = await declare(http, "customs", body)
        assert response.status_code == 200
        assert statuses(response) == ["100"]
        assert "tradeMode" in response.json()["receipts"][0]["returnInfo"]
        assert (await stats(http, "customs"))["answered"] == 1


@pytest.mark.parametrize(
    ("agency", "content", "headers", "status", "detail"),
    [
        ("fx", json.dumps(package("fx")), {}, 400, "1..255"),
        ("fx", "{not json", {"Idempotency-Key": "k"}, 422, "not JSON"),
        ("fx", "[1, 2]", {"Idempotency-Key": "k"}, 422, "one JSON object"),
        ("fx", json.dumps(package("tax")), {"Idempotency-Key": "k"}, 422, "for 'tax', sent to 'fx'"),
        ("fx", json.dumps(package("fx", recordId=None)), {"Idempotency-Key": "k"}, 422, "recordId"),
        ("customs", json.dumps(package(callbackUrl="ftp://x")), {"Idempotency-Key": "k"}, 422, "callbackUrl"),
    ],
    ids=["no key", "not json", "array", "wrong agency", "no record id", "no callback url"],
)
async def test_malformed_calls_are_permanent_4xx_and_not_answered(
    agencies_client: AgencyClientFactory, agency: str, content: str, headers: dict[str, str], status: int, detail: str
) -> None:
    async with agencies_client() as (http, _):
        response = await http.post(
            f"/mock/{agency}/declarations", content=content, headers={"content-type": "application/json", **headers}
        )
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        assert detail in response.json()["detail"]
        counted = await stats(http, agency)
        assert (counted["answered"], counted["requests"]) == (0, 1)


# --- dedupe --------------------------------------------------------------------------------------------


async def test_same_key_same_answer_counted_once(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        body = package("tax")
        first = await declare(http, "tax", body)
        await asyncio.sleep(0.01)  # a later returnTime, were it answered again
        again = await declare(http, "tax", body)
        assert again.content == first.content
        other = await declare(http, "tax", package("tax"))
        assert other.json()["dispatchId"] != first.json()["dispatchId"]
        assert await stats(http, "tax") == {
            "agency": "tax",
            "answered": 2,
            "requests": 3,
            "batchRequests": 0,
            "replays": 1,
            "keyConflicts": 0,
            "faults": {"unavailable": 0, "throttled": 0, "hang": 0, "slow_answer": 0},
            "callbacks": {"pending": 0, "delivered": 0, "failed": 0},
        }
        assert (await stats(http, "fx"))["requests"] == 0  # each agency counts its own calls


async def test_same_key_with_another_body_gets_the_first_answer(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        good = package("fx")
        first = await declare(http, "fx", good, key="key-1")
        changed = await declare(http, "fx", package("fx", payment={"amountPaid": "1.00"}), key="key-1")
        assert changed.content == first.content
        assert statuses(changed) == ["120"]
        counted = await stats(http, "fx")
        assert (counted["answered"], counted["replays"], counted["keyConflicts"]) == (1, 1, 1)


async def test_twenty_concurrent_identical_calls_are_answered_once(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client(mock_latency_ms=20) as (http, _):  # latency: all 20 are in flight together
        body = package("tax")
        responses = await asyncio.gather(*(declare(http, "tax", body) for _ in range(20)))
        assert {r.status_code for r in responses} == {200}
        assert len({r.content for r in responses}) == 1
        counted = await stats(http, "tax")
        assert (counted["answered"], counted["requests"], counted["replays"]) == (1, 20, 19)


# --- the tax agency's annual totals ------------------------------------------------------------------------


def _purchase(total: str, buyer: str = "33010619900101123X", year: str = "2026") -> dict[str, Any]:
    body = package("tax", inventory={"buyerIdNumber": buyer, "declTime": f"{year}0601"})
    body["inventory"]["inventoryList"][0].update(price=total, totalPrice=total)
    return body


async def test_annual_quota_counts_each_key_once_and_rejects_with_621018(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client() as (http, _):
        first = _purchase("5000.00")
        for _ in range(3):  # pushed three times, counted once
            assert statuses(await declare(http, "tax", first)) == ["120"]
        for _ in range(4):
            assert statuses(await declare(http, "tax", _purchase("5000.00"))) == ["120"]
        assert statuses(await declare(http, "tax", _purchase("1000.00"))) == ["120"]  # exactly 26,000.00
        over = await declare(http, "tax", _purchase("0.01"))
        assert statuses(over) == ["100"]
        assert "-621018" in over.json()["receipts"][0]["returnInfo"]
        assert "26000.00" in over.json()["receipts"][0]["returnInfo"]
        assert "taxBill" not in over.json()
        # Another buyer, or the next calendar year, has its own total; the refused purchase added nothing.
        assert statuses(await declare(http, "tax", _purchase("5000.00", buyer="11010519491231002X"))) == ["120"]
        assert statuses(await declare(http, "tax", _purchase("5000.00", year="2027"))) == ["120"]
        assert statuses(await declare(http, "tax", _purchase("0.00"))) == ["120"]


async def test_concurrent_purchases_of_one_buyer_cannot_both_slip_under_the_quota(
    agencies_client: AgencyClientFactory,
) -> None:
    async with agencies_client(mock_latency_ms=10) as (http, _):
        for _ in range(5):
            assert statuses(await declare(http, "tax", _purchase("5000.00"))) == ["120"]  # 25,000 used
        racing = await asyncio.gather(*(declare(http, "tax", _purchase("600.00")) for _ in range(10)))
        assert sorted(s for r in racing for s in statuses(r)) == ["100"] * 9 + ["120"]


# --- fault injection -------------------------------------------------------------------------------------


async def _fault_run(agencies_client: AgencyClientFactory, seed: int, calls: int) -> list[httpx.Response]:
    async with agencies_client(mock_seed=seed, mock_failure_rate=0.3, mock_hang_s=0.001) as (http, _):
        responses = [await declare(http, "fx", package("fx")) for _ in range(calls)]
        counted = await stats(http, "fx")
    by_status = Counter(r.status_code for r in responses)
    assert counted["answered"] == by_status[200]
    assert counted["requests"] == calls
    assert counted["faults"] == {
        "unavailable": by_status[503],
        "throttled": by_status[429],
        "hang": by_status[504],
        "slow_answer": 0,
    }
    return responses


async def test_fault_injection_distribution_is_seeded(agencies_client: AgencyClientFactory) -> None:
    calls = 600
    responses = await _fault_run(agencies_client, seed=42, calls=calls)
    by_status = Counter(r.status_code for r in responses)
    assert set(by_status) == {200, 429, 503, 504}
    assert 0.24 <= (calls - by_status[200]) / calls <= 0.36, by_status
    for failure in (429, 503, 504):
        assert 0.06 <= by_status[failure] / calls <= 0.14, by_status
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["content-type"] == "application/problem+json"
    # The same seed gives the same faults in the same order; another seed does not.
    again = await _fault_run(agencies_client, seed=42, calls=60)
    assert [r.status_code for r in again] == [r.status_code for r in responses[:60]]
    other = await _fault_run(agencies_client, seed=43, calls=60)
    assert [r.status_code for r in other] != [r.status_code for r in responses[:60]]


async def test_a_failed_call_is_not_recorded(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client(mock_failure_rate=1.0, mock_hang_s=0.001) as (http, agencies):
        body = package("fx")
        failures = [await declare(http, "fx", body) for _ in range(6)]
        assert {r.status_code for r in failures} <= {429, 503, 504}
        assert (await stats(http, "fx"))["answered"] == 0
        agencies.settings.mock_failure_rate = 0.0  # the agency recovers; the retry is the first answer
        recovered = await declare(http, "fx", body)
        assert statuses(recovered) == ["120"]
        counted = await stats(http, "fx")
        assert (counted["answered"], counted["requests"], counted["replays"]) == (1, 7, 0)


async def test_a_hang_outlasts_the_client_and_is_not_recorded(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client(mock_failure_rate=1.0, mock_hang_s=0.2, mock_seed=1) as (http, agencies):
        started = time.monotonic()
        statuses_seen = []
        while 504 not in statuses_seen:  # seed 1 draws a hang within a few calls
            statuses_seen.append((await declare(http, "fx", package("fx"))).status_code)
            assert len(statuses_seen) < 20
        # A lower bound, the property itself (the hang held the call); a slow machine only makes it truer.
        assert time.monotonic() - started >= 0.2
        assert (await stats(http, "fx"))["answered"] == 0
        assert agencies.store.ledger("fx").faults["hang"] == 1


async def test_a_slow_answer_is_recorded_before_the_client_gives_up(agencies_client: AgencyClientFactory) -> None:
    async with agencies_client(mock_slow_answer_rate=1.0, mock_hang_s=5) as (http, agencies):
        body = package("fx")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(declare(http, "fx", body), timeout=0.2)  # the client's timeout
        counted = await stats(http, "fx")
        assert (counted["answered"], counted["faults"]["slow_answer"]) == (1, 1)  # it landed
        agencies.settings.mock_slow_answer_rate = 0.0
        retried = await declare(http, "fx", body)
        assert statuses(retried) == ["120"]
        counted = await stats(http, "fx")
        assert (counted["answered"], counted["replays"]) == (1, 1)


async def test_latency_delays_declarations_and_not_stats(agencies_client: AgencyClientFactory) -> None:
    # A latency of a minute: stats answer while the declaration waits, and it is still waiting 5 s on. The bounds
    # are a twelfth and a half of the latency: only its absence (or stats going through it) fails them.
    async with agencies_client(mock_latency_ms=60_000) as (http, _):
        declaring = asyncio.create_task(declare(http, "fx", package("fx")))
        try:
            counted = await asyncio.wait_for(stats(http, "fx"), timeout=30)
            assert counted["answered"] == 0
            done, _ = await asyncio.wait({declaring}, timeout=5)
            assert not done, "the declaration was answered without its latency"
        finally:
            declaring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await declaring


# --- customs: inspection and the signed release callback ----------------------------------------------------

SECRET = "test-callback-secret"


def verify(request: httpx.Request, secret: str = SECRET) -> dict[str, Any]:
    """Our own Standard-Webhooks check: v1,base64(HMAC-SHA256(secret, id.timestamp.body))."""
    webhook_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    assert abs(int(timestamp) - time.time()) < 300
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{webhook_id}.{timestamp}.".encode() + request.content, hashlib.sha256).digest()
    ).decode()
    signatures = [s.split(",", 1)[1] for s in request.headers["webhook-signature"].split() if s.startswith("v1,")]
    assert any(hmac.compare_digest(expected, s) for s in signatures), "bad signature"
    body: dict[str, Any] = json.loads(request.content)
    return body


class SingleWindow:
    """The callback receiver: answers from a script of statuses (or raises), records every request."""

    def __init__(self, script: list[int | Exception] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else 204
        if isinstance(step, Exception):
            raise step
        return httpx.Response(step)


def _held(agency: str = "customs") -> dict[str, Any]:
    return package(agency, riskDecision=INSPECT)  # the single window decided to inspect it


async def test_customs_holds_then_releases_by_a_signed_callback(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow()
    settings = {"agency_callback_secret": SECRET, "mock_inspection_delay_ms": 50}
    async with agencies_client(httpx.MockTransport(receiver), **settings) as (http, agencies):
        body = _held()
        started = time.monotonic()
        answer = await declare(http, "customs", body)
        assert statuses(answer) == ["120", "500"]
        # Inspection takes the same deterministic decision for the record.
        assert statuses(await declare(http, "inspection", {**body, "agency": "inspection"})) == ["500"]
        await agencies.wait_for_callbacks()
        assert time.monotonic() - started >= 0.05  # the inspection delay was served (a lower bound, not a timing)
        assert len(receiver.requests) == 1
        callback = receiver.requests[0]
        assert str(callback.url) == CALLBACK_URL
        assert callback.method == "POST"
        assert callback.headers["content-type"] == "application/json"
        assert callback.headers["webhook-id"].startswith("msg_")
        sent = verify(callback)
        assert sent["agency"] == "customs"
        assert sent["recordId"] == body["recordId"]
        assert sent["dispatchId"] == body["dispatchId"]
        assert [r["returnStatus"] for r in sent["receipts"]] == ["800"]
        assert len(sent["receipts"][0]["returnTime"]) == 17
        with pytest.raises(AssertionError, match="bad signature"):
            verify(callback, secret="another-secret")
        # Pushed again: the same answer, no second callback.
        assert (await declare(http, "customs", body)).content == answer.content
        await agencies.wait_for_callbacks()
        assert len(receiver.requests) == 1
        assert (await stats(http, "customs"))["callbacks"] == {"pending": 0, "delivered": 1, "failed": 0}


async def test_the_default_secret_is_the_documented_development_value(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow()
    async with agencies_client(httpx.MockTransport(receiver), mock_inspection_delay_ms=0) as (http, agencies):
        await declare(http, "customs", _held())
        await agencies.wait_for_callbacks()
        verify(receiver.requests[0], secret="single-window-dev-callback-secret")


async def test_released_at_once_unless_decided_for_inspection(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow()
    async with agencies_client(httpx.MockTransport(receiver), mock_inspection_delay_ms=0) as (http, agencies):
        assert statuses(await declare(http, "customs", package(record_id=PASSES_INSPECTION))) == ["120", "399", "800"]
        await agencies.wait_for_callbacks()
        assert receiver.requests == []


async def test_a_failing_callback_is_retried_with_the_same_id(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow([503, httpx.ConnectError("refused"), 204])
    settings = {"agency_callback_secret": SECRET, "mock_inspection_delay_ms": 0, "mock_callback_backoff_s": 0.01}
    async with agencies_client(httpx.MockTransport(receiver), **settings) as (http, agencies):
        await declare(http, "customs", _held())
        await agencies.wait_for_callbacks()
        assert len(receiver.requests) == 3
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
        assert len({r.content for r in receiver.requests}) == 1
        for request in receiver.requests:
            verify(request)
        assert (await stats(http, "customs"))["callbacks"]["delivered"] == 1


async def test_a_callback_that_never_lands_is_logged_and_sent_again_on_the_next_push(
    agencies_client: AgencyClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = SingleWindow([httpx.ConnectError("refused")] * 2)
    settings = {"mock_inspection_delay_ms": 0, "mock_callback_backoff_s": 0.01, "mock_callback_attempts": 2}
    async with agencies_client(httpx.MockTransport(receiver), **settings) as (http, agencies):
        body = _held()
        await declare(http, "customs", body)
        await agencies.wait_for_callbacks()
        assert (await stats(http, "customs"))["callbacks"]["failed"] == 1
        assert "given up after 2 tries" in caplog.text
        assert statuses(await declare(http, "fx", package("fx"))) == ["120"]  # the app carries on
        # The single window pushes the declaration again (重推): same answer, the release is sent again.
        await declare(http, "customs", body)
        await agencies.wait_for_callbacks()
        assert len(receiver.requests) == 3
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
        counted = await stats(http, "customs")
        assert counted["callbacks"] == {"pending": 0, "delivered": 1, "failed": 0}
        assert counted["answered"] == 1


async def test_pending_callbacks_are_cancelled_at_shutdown(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow()
    async with agencies_client(httpx.MockTransport(receiver), mock_inspection_delay_ms=60_000) as (http, agencies):
        await declare(http, "customs", _held())
        assert (await stats(http, "customs"))["callbacks"]["pending"] == 1
    await agencies.wait_for_callbacks()  # returns at once: the lifespan cancelled the task
    assert receiver.requests == []


# --- mounted under another app (embedded mode) ---------------------------------------------------------------


async def test_the_router_mounts_under_the_main_app() -> None:
    receiver = SingleWindow()
    settings = mock_settings(mock_inspection_delay_ms=0)
    main = FastAPI()
    main.include_router(create_mock_agencies_router(settings, callback_transport=httpx.MockTransport(receiver)))
    paths = main.openapi()["paths"]
    for agency in ("customs", "inspection", "tax", "fx"):
        assert paths[f"/mock/{agency}/declarations"]["post"]["operationId"] == f"mock_{agency}_declare"
        assert paths[f"/mock/{agency}/declarations/batch"]["post"]["operationId"] == f"mock_{agency}_declare_batch"
        assert paths[f"/mock/{agency}/stats"]["get"]["operationId"] == f"mock_{agency}_stats"
    async with (
        LifespanManager(main),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=main), base_url="http://sw.test") as http,
    ):
        assert statuses(await declare(http, "customs", _held())) == ["120", "500"]
        for _ in range(100):
            if receiver.requests:
                break
            await asyncio.sleep(0.01)
        assert [r["returnStatus"] for r in verify(receiver.requests[0], "single-window-dev-callback-secret")[
            "receipts"]] == ["800"]  # fmt: skip


async def test_customs_signs_its_release_with_its_own_current_secret(agencies_client: AgencyClientFactory) -> None:
    receiver = SingleWindow()
    settings = {
        "agency_callback_secret": SECRET,
        "customs_callback_secrets": "customs-current-secret,customs-previous-secret",
        "mock_inspection_delay_ms": 0,
    }
    async with agencies_client(httpx.MockTransport(receiver), **settings) as (http, agencies):
        await declare(http, "customs", _held())
        await agencies.wait_for_callbacks()
        verify(receiver.requests[0], secret="customs-current-secret")
        with pytest.raises(AssertionError, match="bad signature"):
            verify(receiver.requests[0], secret=SECRET)
