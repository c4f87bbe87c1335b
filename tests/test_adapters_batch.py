"""The batch wire contract at the transport edge (``httpx.MockTransport``): one POST per batch, each
declaration with its dispatchId; whole-call failures raised, per-declaration ones in their slot; and the
fallback to ``submit`` per declaration for adapters without ``submit_batch``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.adapters.base import (
    AgencyAnswer,
    BatchAgencyAdapter,
    HttpAgencyAdapter,
    PermanentAgencyError,
    RetryableAgencyError,
)
from app.adapters.batch import send_batch
from app.adapters.customs import CustomsAdapter

BASE = "https://agency.test/ceb"


def package(n: int) -> dict[str, Any]:
    return {"dispatchId": f"d{n}", "recordId": f"r{n}", "agency": "customs", "inventory": {}, "seller": {"x": 1}}


def items(count: int) -> list[tuple[str, dict[str, Any]]]:
    return [(f"d{n}", package(n)) for n in range(count)]


def adapter(handler: Callable[[httpx.Request], httpx.Response], cls: type = CustomsAdapter) -> HttpAgencyAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    result: HttpAgencyAdapter = cls("customs", client, BASE + "/")
    return result


def answered(request: httpx.Request, **slots: dict[str, Any]) -> httpx.Response:
    """Answer every declaration 120, except the slots given by dispatch id."""
    declarations = json.loads(request.content)["declarations"]
    ok = {"status": 200, "receipts": [{"returnStatus": "120", "returnInfo": "ok", "returnTime": "20260101000000000"}]}
    results = [{"dispatchId": d["dispatchId"], **slots.get(d["dispatchId"], ok)} for d in declarations]
    return httpx.Response(200, json={"agency": "customs", "results": results})


async def test_one_post_per_batch_each_declaration_keyed_by_its_dispatch_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answered(request)

    results = await adapter(handler).submit_batch(items(3))
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/declarations/batch")
    assert "idempotency-key" not in request.headers  # each declaration carries its own
    sent = json.loads(request.content)["declarations"]
    assert [d["dispatchId"] for d in sent] == ["d0", "d1", "d2"]
    assert all("seller" not in d for d in sent)  # the customs adapter's payload, per declaration
    assert [type(r) for r in results] == [AgencyAnswer] * 3
    assert isinstance(adapter(handler), BatchAgencyAdapter)


async def test_per_declaration_errors_fail_only_their_declaration() -> None:
    slots = {
        "d1": {"status": 422, "code": "MALFORMED_PACKAGE", "detail": "recordId"},
        "d2": {"status": 503, "code": "BUSY", "retryAfter": 7},
        "d3": {"status": 200, "receipts": [{"returnStatus": "not a code"}]},
    }
    results = await adapter(lambda r: answered(r, **slots)).submit_batch(items(5))
    ok, refused, busy, unreadable, also_ok = results
    assert isinstance(ok, AgencyAnswer)
    assert isinstance(also_ok, AgencyAnswer)
    assert isinstance(refused, PermanentAgencyError)
    assert refused.status == 422
    assert "MALFORMED_PACKAGE" in str(refused)
    assert isinstance(busy, RetryableAgencyError)
    assert (busy.status, busy.retry_after_s) == (503, 7.0)
    assert isinstance(unreadable, PermanentAgencyError)


async def test_a_declaration_without_a_result_or_an_unreadable_answer_is_permanent() -> None:
    def missing_one(request: httpx.Request) -> httpx.Response:
        response = answered(request)
        body = json.loads(response.content)
        body["results"] = body["results"][1:]
        return httpx.Response(200, json=body)

    first, second = await adapter(missing_one).submit_batch(items(2))
    assert isinstance(first, PermanentAgencyError)
    assert "no result" in str(first)
    assert isinstance(second, AgencyAnswer)
    garbled = await adapter(lambda r: httpx.Response(200, text="<html>")).submit_batch(items(2))
    assert all(isinstance(r, PermanentAgencyError) for r in garbled)


@pytest.mark.parametrize(
    ("response", "error", "retry_after"),
    [
        (httpx.Response(503), RetryableAgencyError, None),
        (httpx.Response(429, headers={"Retry-After": "3"}), RetryableAgencyError, 3.0),
        (httpx.Response(404, text="no batch route"), PermanentAgencyError, None),
    ],
    ids=["503", "429", "404"],
)
async def test_a_whole_call_failure_is_raised_for_the_batch(
    response: httpx.Response, error: type[Exception], retry_after: float | None
) -> None:
    with pytest.raises(error) as raised:
        await adapter(lambda _: response).submit_batch(items(3))
    assert getattr(raised.value, "retry_after_s", None) == retry_after
    results = await send_batch(adapter(lambda _: response), "customs", items(3))
    assert [type(r) for r in results] == [error] * 3


async def test_a_timeout_retries_every_declaration_of_the_call() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    results = await send_batch(adapter(hang), "customs", items(4))
    assert [type(r) for r in results] == [RetryableAgencyError] * 4


class SubmitOnly:
    """An adapter written before batches."""

    name = "customs"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> AgencyAnswer:
        self.calls.append(dispatch_id)
        if dispatch_id == "d1":
            raise PermanentAgencyError("refused", 400)
        if dispatch_id == "d2":
            raise ConnectionResetError(104, "reset")
        if dispatch_id == "d3":
            raise ValueError("a bug")
        return AgencyAnswer(receipts=[])


async def test_an_adapter_without_submit_batch_is_called_per_declaration() -> None:
    legacy = SubmitOnly()
    assert not isinstance(legacy, BatchAgencyAdapter)
    ok, refused, reset, bug, also_ok = await send_batch(legacy, "customs", items(5))
    assert sorted(legacy.calls) == ["d0", "d1", "d2", "d3", "d4"]
    assert isinstance(ok, AgencyAnswer)
    assert isinstance(also_ok, AgencyAnswer)
    assert isinstance(refused, PermanentAgencyError)
    assert isinstance(reset, RetryableAgencyError)
    assert isinstance(bug, PermanentAgencyError)
    assert "a bug" in str(bug)


class MiscountingAdapter(SubmitOnly):
    async def submit_batch(self, items: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        return [AgencyAnswer(receipts=[])]


async def test_a_batch_adapter_answering_the_wrong_number_of_results_dead_letters_the_batch() -> None:
    results = await send_batch(MiscountingAdapter(), "customs", items(3))
    assert all(isinstance(r, PermanentAgencyError) and "1 results for 3" in str(r) for r in results)
    assert all(isinstance(r, PermanentAgencyError) for r in await send_batch(None, "customs", items(2)))
