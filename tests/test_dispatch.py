"""Declare once, every agency acts, the answer comes back: the outbox, the dispatcher, the mock agencies
(mounted in the app, reached in-process) and the receipts on the record."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select

from app.config import Settings
from app.models import Dispatch, DispatchAttempt
from app.rules.backoff import backoff_delay
from app.services.dispatch import claim_due, deliver
from app.webhooks import sign
from app.worker import Dispatcher
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase

AGENCIES = ("customs", "inspection", "tax", "fx")


_app = serving  # the app with its mock agencies and a client, wiped afterwards


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Fast agencies: no inspection sampling unless asked, quick callbacks, tiny backoff."""
    async with _app(
        settings,
        supervision_rate_regular=0.0,
        mock_inspection_delay_ms=10,
        dispatch_backoff_base_s=0.001,
        dispatch_backoff_cap_s=0.01,
    ) as pair:
        yield pair


def dispatcher(app: FastAPI) -> Dispatcher:
    return Dispatcher(
        app.state.engine, app.state.sessionmaker, app.state.settings, app.state.adapters, metrics=app.state.metrics
    )


async def drain(app: FastAPI, until: float = 20.0) -> None:
    """Run the dispatcher until nothing is due (and the mock agencies' callbacks have arrived)."""
    worker = dispatcher(app)
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        claimed = await worker.run_once()
        await app.state.mock_agencies.wait_for_callbacks()
        async with app.state.sessionmaker() as session:
            open_ = await session.scalar(
                select(func.count()).select_from(Dispatch).where(Dispatch.status.in_(("pending", "retry", "in_flight")))
            )
        if not claimed and not open_:
            return
        if not claimed:
            await asyncio.sleep(0.01)
    raise AssertionError("the outbox did not drain")


async def detail(client: httpx.AsyncClient, record_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/records/{record_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stats(client: httpx.AsyncClient, agency: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/mock/{agency}/stats")).json()
    return body


async def test_tax_on_a_half_cent_agrees_with_the_independent_tax_agency(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    """12.75 of the example cosmetic: consumption tax 1.575 → 1.58, VAT 1.365 → 1.37 (half-up, per line; docs/tax.md).
    The mock tax agency assesses the package with its own implementation, so a rounding bug in the application
    shows up here as its note (and as TAX_TOTAL_MISMATCH against the order's hand-worked taxTotal)."""
    app, client = world
    parties = await file_parties(client)
    line = {"price": "12.75", "totalPrice": "12.75", "qty": "1"}
    order, payment, waybill = purchase(
        order={"goodsValue": "12.75", "taxTotal": "2.95", "acturalPaid": "15.70"}, payment={"amountPaid": "15.70"}
    )
    order["orderList"] = [order["orderList"][0] | line]
    receipt = (await post_triple(client, parties, (order, payment, waybill)))[-1].json()
    assert receipt["recordStatus"] == "DECLARED", receipt
    await drain(app)
    record = await detail(client, receipt["recordId"])
    assert record["discrepancies"] == []
    tax = record["declaration"]["tax"]
    assert (tax["valueAddedTax"], tax["consumptionTax"], tax["taxTotal"]) == ("1.37", "1.58", "2.95")
    assert record["agencies"]["tax"]["returnStatus"] == "120"
    assert record["agencies"]["tax"]["returnInfo"] == "税单已生成 (tax assessed)"  # no "differs" note


async def test_declared_purchase_is_cleared_with_every_agency_receipt(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    assert receipt["recordStatus"] == "DECLARED"
    await drain(app)
    record = await detail(client, receipt["recordId"])
    assert record["status"] == "CLEARED", record
    assert {a: record["agencies"][a]["returnStatus"] for a in AGENCIES} == {
        "customs": "800",
        "inspection": "120",
        "tax": "120",
        "fx": "120",
    }
    assert [(r["agency"], r["returnStatus"]) for r in record["receipts"] if r["agency"] == "customs"] == [
        ("customs", "120"),
        ("customs", "399"),
        ("customs", "800"),
    ]
    changes = [e["detail"]["to"] for e in record["timeline"] if e["kind"] == "status_changed"]
    assert changes[-3:] == ["MATCHED", "DECLARED", "CLEARED"]
    for agency in AGENCIES:
        assert (await stats(client, agency))["answered"] == 1

    metrics = await client.get("/metrics", headers={"X-Request-ID": "trace-0001"})
    assert metrics.headers["x-request-id"] == "trace-0001"
    text = metrics.text
    assert 'sw_documents_received_total{outcome="accepted",type="order"} 1.0' in text
    assert 'sw_records{status="CLEARED"} 1.0' in text
    assert 'sw_dispatch_attempts_total{agency="customs",outcome="delivered"} 1.0' in text
    assert 'sw_outbox_depth{status="pending"} 0.0' in text
    assert "sw_match_processed_total 3.0" in text
    assert 'sw_stage_backlog{stage="match"} 0.0' in text
    assert "sw_outbox_oldest_pending_age_seconds 0.0" in text
    assert 'sw_dispatch_latency_seconds_count{agency="fx",outcome="delivered"} 1.0' in text


async def test_inspection_holds_then_customs_releases_by_signed_callback(settings: Settings) -> None:
    async with _app(settings, supervision_rate_regular=1.0, mock_inspection_delay_ms=300) as (app, client):
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase()))[-1].json()
        worker = dispatcher(app)
        await worker.run_once()
        held = await detail(client, receipt["recordId"])
        if held["status"] == "INSPECTION":  # the release callback may already be in
            assert held["agencies"]["customs"]["returnStatus"] == "500"
        await drain(app)
        record = await detail(client, receipt["recordId"])
        assert record["status"] == "CLEARED"
        sources = [(r["agency"], r["returnStatus"], r["source"]) for r in record["receipts"]]
        assert ("customs", "500", "reply") in sources
        assert ("customs", "800", "callback") in sources
        assert "INSPECTION" in [e["detail"]["to"] for e in record["timeline"] if e["kind"] == "status_changed"]


async def test_agency_rejection_rejects_the_record_and_releases_the_quota(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = world
    parties = await file_parties(client)
    # The goods record says the item is off the positive list: inspection answers 100.
    patched = await client.patch("/api/v1/goods/3120960A02/JP-SSD-50", json={"positiveList": False}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    await drain(app)
    record = await detail(client, receipt["recordId"])
    assert record["status"] == "REJECTED"
    assert record["rejection"]["agency"] == "inspection"
    assert record["rejection"]["cebReturnStatus"] == "100"
    assert "JP-SSD-50" in record["rejection"]["returnInfo"]


async def test_a_third_of_agency_calls_failing_every_record_still_ends(settings: Settings) -> None:
    async with _app(
        settings,
        mock_failure_rate=0.33,
        mock_hang_s=0.3,
        agency_timeout_s=0.1,
        supervision_rate_regular=0.0,
        dispatch_backoff_base_s=0.001,
        dispatch_backoff_cap_s=0.01,
        dispatch_max_attempts=30,
    ) as (app, client):
        parties = await file_parties(client)
        ids = [(await post_triple(client, parties, purchase(own_buyer=True)))[-1].json()["recordId"] for _ in range(8)]
        await drain(app, until=60)
        for record_id in ids:
            assert (await detail(client, record_id))["status"] == "CLEARED"
        for agency in AGENCIES:
            agency_stats = await stats(client, agency)
            assert agency_stats["answered"] == len(ids), agency_stats  # each declaration acted on once
        async with app.state.sessionmaker() as session:
            attempts = list(await session.scalars(select(DispatchAttempt.outcome)))
        assert attempts.count("delivered") == len(ids) * len(AGENCIES)
        assert "retry" in attempts  # the faults really happened


async def test_permanent_4xx_goes_dead_after_one_attempt_then_redispatch_delivers(settings: Settings) -> None:
    broken = {"fx": "http://embedded/mock/nowhere"}  # 404: a permanent answer
    async with _app(settings, agency_urls=broken, supervision_rate_regular=0.0) as (app, client):
        # The configured URL is "remote": point that client at this app too (the edge is still HTTP).
        app.state.adapters["fx"].client = app.state.adapters["customs"].client
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase()))[-1].json()
        await drain(app)
        dead = (await client.get("/api/v1/admin/dispatches", params={"status": "dead"}, headers=ADMIN)).json()
        [fx] = dead["items"]
        assert (fx["agency"], fx["attempts"], len(fx["history"])) == ("fx", 1, 1)
        assert fx["history"][0]["httpStatus"] == 404
        record = await detail(client, receipt["recordId"])
        assert record["agencies"]["fx"]["status"] == "dead"
        assert "dispatch_dead" in [e["kind"] for e in record["timeline"]]

        # Configuration fixed, an admin re-pushes (重推): delivered, once.
        app.state.adapters["fx"].base_url = "http://embedded/mock/fx"
        pushed = await client.post(f"/api/v1/records/{receipt['recordId']}/redispatch", headers=ADMIN)
        assert pushed.status_code == 200, pushed.text
        assert [d["status"] for d in pushed.json()["items"]] == ["pending"]
        await drain(app)
        record = await detail(client, receipt["recordId"])
        assert record["agencies"]["fx"]["returnStatus"] == "120"
        assert (await stats(client, "fx"))["answered"] == 1
        again = await client.post(f"/api/v1/records/{receipt['recordId']}/redispatch", headers=ADMIN)
        assert again.status_code == 409


async def test_worker_crash_after_send_before_record_redelivers_and_agency_counts_once(settings: Settings) -> None:
    async with _app(settings, dispatch_lease_s=0.05, supervision_rate_regular=0.0) as (app, client):
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase()))[-1].json()
        claims = await claim_due(app.state.sessionmaker, app.state.settings)
        assert len(claims) == len(AGENCIES)
        # The worker sends to customs, then dies before recording anything.
        customs = next(c for c in claims if c.agency == "customs")
        async with app.state.sessionmaker() as session:
            from app.services.dispatch import build_package

            package = await build_package(session, customs, app.state.settings)
        await app.state.adapters["customs"].submit(package, str(customs.id))
        await asyncio.sleep(0.1)  # the leases expire
        await drain(app)
        record = await detail(client, receipt["recordId"])
        assert record["status"] == "CLEARED"
        customs_stats = await stats(client, "customs")
        assert (customs_stats["answered"], customs_stats["requests"], customs_stats["replays"]) == (1, 2, 1)
        async with app.state.sessionmaker() as session:
            row = await session.get(Dispatch, customs.id)
            assert row is not None
            assert (row.status, row.attempts) == ("delivered", 2)


async def test_a_stale_claim_cannot_record_over_a_newer_one(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    await post_triple(client, parties, purchase())
    claims = await claim_due(app.state.sessionmaker, app.state.settings)
    stale = claims[0]
    newer = stale.__class__(stale.id, stale.record_id, stale.agency, stale.attempt + 1)
    async with app.state.sessionmaker() as session, session.begin():
        row = await session.get(Dispatch, stale.id)
        assert row is not None
        row.attempts = newer.attempt  # as if the lease expired and another worker claimed it again
    outcome = await deliver(app.state.sessionmaker, app.state.settings, app.state.adapters, stale)
    assert outcome == "lost_lease"


async def test_two_workers_never_deliver_one_dispatch_twice(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    parties = await file_parties(client)
    for _ in range(15):
        await post_triple(client, parties, purchase(own_buyer=True))
    workers = [dispatcher(app), dispatcher(app)]
    for _ in range(20):
        claimed = await asyncio.gather(*(w.run_once() for w in workers))
        if not any(claimed):
            break
    await app.state.mock_agencies.wait_for_callbacks()
    async with app.state.sessionmaker() as session:
        delivered = await session.scalar(
            select(func.count()).select_from(DispatchAttempt).where(DispatchAttempt.outcome == "delivered")
        )
        total = await session.scalar(select(func.count()).select_from(Dispatch))
    assert delivered == total == 15 * len(AGENCIES)
    for agency in AGENCIES:
        agency_stats = await stats(client, agency)
        assert (agency_stats["answered"], agency_stats["replays"]) == (15, 0)  # no declaration sent twice
        assert agency_stats["requests"] == agency_stats["batchRequests"] <= 2  # a batch per worker that claimed


# --- signed callbacks ---------------------------------------------------------------------------------


DEV_SECRET = "single-window-dev-callback-secret"


def _signed(body: bytes, secret: str = DEV_SECRET, **headers: str) -> dict[str, str]:
    webhook_id = headers.get("webhook-id", f"msg_{uuid.uuid4().hex}")
    timestamp = headers.get("webhook-timestamp", str(int(time.time())))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


async def test_callbacks_are_verified_and_processed_once(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = world
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    body = (
        f'{{"agency":"customs","recordId":"{receipt["recordId"]}",'
        '"receipts":[{"returnStatus":"500","returnInfo":"查验"}]}'
    ).encode()
    url = "/api/v1/agency-callbacks/customs"

    headers = _signed(body)
    first = await client.post(url, content=body, headers=headers)
    assert first.json() == {"status": "accepted", "webhookId": headers["webhook-id"], "recordStatus": "INSPECTION"}
    replay = await client.post(url, content=body, headers=headers)
    assert replay.json()["status"] == "duplicate"
    record = await detail(client, receipt["recordId"])
    assert [r["source"] for r in record["receipts"]].count("callback") == 1

    tampered = body.replace(b"500", b"800")
    assert (await client.post(url, content=tampered, headers=_signed(body))).json()["code"] == "SIGNATURE_INVALID"
    stale = _signed(body, **{"webhook-timestamp": str(int(time.time()) - 301)})
    assert (await client.post(url, content=body, headers=stale)).json()["code"] == "SIGNATURE_STALE"
    wrong_key = _signed(body, secret="not-the-secret")
    assert (await client.post(url, content=body, headers=wrong_key)).status_code == 401
    assert (await detail(client, receipt["recordId"]))["status"] == "INSPECTION"


async def test_callback_secret_rotation_accepts_old_and_new(settings: Settings) -> None:
    async with _app(settings, agency_callback_secret=SecretStr("new-secret,old-secret")) as (_, client):
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase()))[-1].json()
        body = (
            f'{{"recordId":"{receipt["recordId"]}","receipts":[{{"returnStatus":"120","returnInfo":"ok"}}]}}'
        ).encode()
        for secret in ("old-secret", "new-secret"):
            response = await client.post("/api/v1/agency-callbacks/tax", content=body, headers=_signed(body, secret))
            assert response.json()["status"] == "accepted", response.text


@given(
    st.integers(min_value=1, max_value=40),
    st.floats(min_value=0.001, max_value=10),
    st.floats(min_value=1, max_value=900),
)
def test_backoff_stays_within_full_jitter_bounds(attempt: int, base: float, cap: float) -> None:
    rng = random.Random(attempt)
    delay = backoff_delay(attempt, base, cap, None, rng)
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))
    assert backoff_delay(attempt, base, cap, 5.0, rng) >= min(5.0, cap)


@pytest.mark.postgres_only
async def test_dispatcher_wakes_on_notify_not_on_its_poll(settings: Settings) -> None:
    """With the poll a minute away, only the declaring transaction's NOTIFY can start the round that delivers
    the declaration: the worker is idle and listening before the purchase is sent (its first round is over),
    it is woken (counted), and the record clears well inside the minute."""
    async with _app(settings, dispatch_poll_s=60.0, supervision_rate_regular=0.0) as (app, client):
        parties = await file_parties(client)
        worker = dispatcher(app)
        rounds: list[int] = []
        wakes: list[None] = []
        run_once, wake = worker.run_once, worker.wake

        a_round = asyncio.Event()

        async def counted_round() -> int:
            rounds.append(await run_once())
            a_round.set()
            return rounds[-1]

        def counted_wake() -> None:
            wakes.append(None)
            wake()

        worker.run_once = counted_round  # type: ignore[method-assign]
        worker.wake = counted_wake  # type: ignore[method-assign]
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(a_round.wait(), timeout=30)
            assert worker._listening()  # run() LISTENs before each round
            assert rounds == [0]  # nothing to do yet: it now waits for a wake-up or the poll in 60 s
            receipt = (await post_triple(client, parties, purchase()))[-1].json()
            # A generous bound that is still half the poll: a dispatcher that missed the NOTIFY fails it.
            async with asyncio.timeout(30):
                while True:
                    if (await detail(client, receipt["recordId"]))["status"] == "CLEARED":
                        break
                    await asyncio.sleep(0.05)
            assert wakes, "cleared without a wake-up"
            assert len(rounds) >= 2
        finally:
            worker.stop()
            await asyncio.wait_for(running, timeout=10)


class RecordingFxAdapter:
    """A fifth-party adapter class named in configuration (SW_AGENCY_ADAPTERS)."""

    def __init__(self, name: str, client: httpx.AsyncClient, base_url: str) -> None:
        self.name, self.client, self.base_url = name, client, base_url


def test_adapters_come_from_configuration(settings: Settings) -> None:
    from app.adapters.customs import CustomsAdapter
    from app.adapters.registry import build_adapters

    configured = settings.model_copy(
        update={
            "agency_adapters": {"fx": "tests.test_dispatch:RecordingFxAdapter"},
            "agency_urls": {"customs": "https://customs.example/ceb"},
        }
    )
    remote, embedded = httpx.AsyncClient(), httpx.AsyncClient()
    adapters = build_adapters(["customs", "fx"], configured, remote, embedded)
    assert isinstance(adapters["fx"], RecordingFxAdapter)
    assert adapters["fx"].client is embedded
    customs = adapters["customs"]
    assert isinstance(customs, CustomsAdapter)
    assert (customs.client, customs.base_url) == (remote, "https://customs.example/ceb")
    with pytest.raises(LookupError):
        build_adapters(["fifth"], configured, remote, embedded)


class BrokenAdapter:
    """An adapter with a bug: it raises something that is not an agency error."""

    name = "fx"

    async def submit(self, package: dict[str, Any], dispatch_id: str) -> Any:
        raise ValueError("a bug in a custom adapter")


async def test_a_broken_adapter_goes_dead_instead_of_looping(world: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = world
    app.state.adapters["fx"] = BrokenAdapter()
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase()))[-1].json()
    await drain(app)
    [fx] = (await client.get("/api/v1/admin/dispatches", params={"status": "dead"}, headers=ADMIN)).json()["items"]
    assert (fx["agency"], fx["attempts"]) == ("fx", 1)
    assert "a bug in a custom adapter" in fx["lastError"]
    assert (await detail(client, receipt["recordId"]))["agencies"]["fx"]["status"] == "dead"


async def test_an_expired_last_attempt_goes_dead(settings: Settings) -> None:
    async with _app(settings, dispatch_lease_s=0.01, dispatch_max_attempts=1) as (app, client):
        parties = await file_parties(client)
        await post_triple(client, parties, purchase())
        assert len(await claim_due(app.state.sessionmaker, app.state.settings)) == 4  # ... and the worker dies
        await asyncio.sleep(0.05)
        await dispatcher(app).run_once()
        async with app.state.sessionmaker() as session:
            statuses = set(await session.scalars(select(Dispatch.status)))
        assert statuses == {"dead"}


async def test_callbacks_are_checked_against_the_agency_and_the_dispatch(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = world
    parties = await file_parties(client)
    declared = (await post_triple(client, parties, purchase()))[-1].json()["recordId"]
    awaiting = (await client.post("/api/v1/orders", json=purchase()[0], headers=parties.platform)).json()["recordId"]

    def body(record_id: str, status: str = "800", **extra: str) -> bytes:
        receipt = {"returnStatus": status, "returnInfo": "x"}
        return json.dumps({"recordId": record_id, "receipts": [receipt], **extra}).encode()

    async def post(agency: str, content: bytes) -> httpx.Response:
        return await client.post(f"/api/v1/agency-callbacks/{agency}", content=content, headers=_signed(content))

    assert (await post("bogus", body(declared))).json()["code"] == "AGENCY_NOT_FOUND"
    assert (await post("customs", body(declared, agency="fx"))).json()["code"] == "CALLBACK_INVALID"
    assert (await post("customs", body(declared, status="12345678901"))).json()["code"] == "CALLBACK_INVALID"
    assert (await post("customs", body(declared, status="80\u00000"))).json()["code"] == "CALLBACK_INVALID"
    assert (await post("customs", body(awaiting, status="-1"))).json()["code"] == "CALLBACK_NOT_APPLICABLE"
    stranger = str(uuid.uuid4())
    assert (await post("customs", body(declared, dispatchId=stranger))).json()["code"] == "CALLBACK_NOT_APPLICABLE"
    assert (await detail(client, declared))["status"] == "DECLARED"
    assert (await detail(client, awaiting))["status"] == "AWAITING_DOCUMENTS"


async def test_a_carrier_party_to_a_purchase_does_not_see_the_buyers_id(
    world: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = world
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase(payment={"payerIdNumber": "330106198805054329"})))[-1]
    record_id = receipt.json()["recordId"]
    as_carrier = await client.get(f"/api/v1/records/{record_id}", headers=parties.logistics)
    body = as_carrier.json()
    assert body["buyerIdNumber"] == "330106********123X"
    assert body["declaration"] is None
    [payer] = [d for d in body["discrepancies"] if d["field"] == "payment.payerIdNumber"]
    assert (payer["expected"], payer["actual"]) == ("330106********123X", "330106********4329")
    listed = (await client.get("/api/v1/records", headers=parties.payment)).json()["items"]
    assert [r["buyerIdNumber"] for r in listed] == ["330106********123X"]
    declaration = await client.get(f"/api/v1/records/{record_id}/declaration", headers=parties.logistics)
    assert declaration.status_code == 404
    as_platform = (await client.get(f"/api/v1/records/{record_id}", headers=parties.platform)).json()
    assert as_platform["buyerIdNumber"] == "33010619900101123X"
    declared = (await post_triple(client, parties, purchase()))[-1].json()["recordId"]
    assert (await client.get(f"/api/v1/records/{declared}", headers=parties.logistics)).json()["declaration"] is None
    assert (await client.get(f"/api/v1/records/{declared}", headers=parties.seller)).json()["declaration"] is not None


def test_an_installed_package_can_serve_an_agency(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry-point group ``singlewindow.adapters`` read from a real distribution's metadata on the path;
    configuration still wins over it, and the built-in class serves an agency no package names."""
    from app.adapters.customs import CustomsAdapter
    from app.adapters.registry import build_adapters, installed_adapters

    dist = tmp_path / "sw_custom_adapters-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sw-custom-adapters\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[singlewindow.adapters]\n"
        "fx = tests.test_dispatch:RecordingFxAdapter\n"
        "tax = tests.test_dispatch:BrokenAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    installed_adapters.cache_clear()
    try:
        configured = settings.model_copy(update={"agency_adapters": {"tax": "app.adapters.tax:TaxAdapter"}})
        remote, embedded = httpx.AsyncClient(), httpx.AsyncClient()
        adapters = build_adapters(["customs", "tax", "fx"], configured, remote, embedded)
        assert isinstance(adapters["fx"], RecordingFxAdapter)
        assert type(adapters["tax"]).__name__ == "TaxAdapter"
        assert isinstance(adapters["customs"], CustomsAdapter)
    finally:
        installed_adapters.cache_clear()
