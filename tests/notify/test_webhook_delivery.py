"""Webhook delivery end to end: the API, the fan-out and the delivery worker in this process, a real HTTP
receiver on a free port. Signed, in order per record, retried after 500s, deduplicable on webhook-id,
redelivered and replayed with the same id, held by a pause, refused by the SSRF guard at delivery time, and
a hanging receiver holding up no one else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.models import Subscription, WebhookDelivery
from app.notify.webhook import webhook_client
from app.notify.worker import DeliveryWorker
from app.schemas import examples
from app.services.fanout import fan_out
from app.services.webhook_delivery import AttemptResult, Claimed, claim_due, record_attempts
from app.webhooks import sign
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, post_triple, purchase
from tests.notify.receiver import Arrival, Receiver, receiving

PLATFORM, SELLER = examples.ENTERPRISES[0]["code"], examples.ENTERPRISES[1]["code"]
FAST_RETRIES = {"webhook_allow_private": True, "webhook_backoff_base_s": 0.01, "webhook_backoff_cap_s": 0.05}


@contextlib.asynccontextmanager
async def worker_of(app: FastAPI, **overrides: Any) -> AsyncIterator[DeliveryWorker]:
    client = webhook_client()
    settings = app.state.settings.model_copy(update=overrides)
    try:
        yield DeliveryWorker(app.state.sessionmaker, settings, client)
    finally:
        await client.aclose()


async def pending(app: FastAPI, *statuses: str) -> int:
    """Deliveries in ``statuses`` (default: pending)."""
    async with app.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status.in_(statuses or ("pending",)))
        )
    return int(count or 0)


async def drain(app: FastAPI, worker: DeliveryWorker, until: Any = None, at_least: int = 5) -> None:
    """Run the worker until at least ``at_least`` deliveries exist, none is pending and nothing is in flight
    (or ``until()`` holds). On PostgreSQL the feed may show events a moment after their commit (while an older
    transaction is open), so the deliveries to wait for are counted, not assumed fanned out at once."""
    for _ in range(6000):
        await worker.run_once()
        if until is not None and until():
            return
        fanned = await pending(app, "pending", "delivered", "dead") >= at_least
        idle = fanned and worker.in_flight == 0 and await pending(app) == 0
        if idle and await worker.run_once() == 0 and worker.in_flight == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("deliveries did not settle")


async def subscribe(http: httpx.AsyncClient, headers: dict[str, str], url: str, code: str = PLATFORM) -> dict[str, Any]:
    answer = await http.post(
        f"/api/v1/enterprises/{code}/subscriptions",
        json={"url": url, "events": ["document_receipt", "status_changed"]},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def verified(arrival: Arrival, secret: str) -> bool:
    expected = sign(secret, arrival.webhook_id, arrival.timestamp, arrival.body)
    return expected in arrival.signature.split()


def positions(arrivals: list[Arrival]) -> list[tuple[int, int]]:
    return [tuple(map(int, a.payload["data"]["position"].split("."))) for a in arrivals]  # type: ignore[misc]


async def matched(http: httpx.AsyncClient) -> Parties:
    parties = await file_parties(http)
    for answer in await post_triple(http, parties, purchase()):
        assert answer.status_code == 201, answer.text
    return parties


async def test_signed_events_arrive_in_order_after_500s_and_dedupe_on_webhook_id(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving(fail_next=3) as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text
        async with worker_of(app) as worker:
            await drain(app, worker)

        got = receiver.unique()
        assert len(receiver.refused) == 3
        kinds = [a.payload["type"] for a in got]
        assert kinds.count("document_receipt") == 3
        assert kinds.count("status_changed") >= 2
        assert all(verified(a, subscription["secret"]) for a in receiver.arrivals + receiver.refused)
        # one record: its events in feed order, whatever failed on the way
        assert positions(got) == sorted(positions(got))
        # a retried event came back with the webhook-id of its failed attempt
        assert {a.webhook_id for a in receiver.refused} <= {a.webhook_id for a in got}

        listed = await http.get(
            f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}/deliveries", headers=parties.platform
        )
        items = listed.json()["items"]
        assert {d["status"] for d in items} == {"delivered"}
        assert sum(d["attempts"] for d in items) == len(items) + 3
        assert [f"msg_{d['id'].replace('-', '')}" for d in items] == [a.webhook_id for a in got]


async def test_redeliver_replay_and_rotation_keep_the_webhook_id(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        base = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        async with worker_of(app) as worker:
            await drain(app, worker)
            first = list(receiver.arrivals)
            rotated = (await http.post(f"{base}/rotate-secret", headers=parties.platform)).json()["secret"]

            again = await http.post(f"{base}/deliveries/{first[0].webhook_id[4:]}/redeliver", headers=parties.platform)
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "pending"
            await drain(app, worker)
            assert receiver.arrivals[-1].webhook_id == first[0].webhook_id
            # during the overlap: signed with the new secret and the old one
            assert verified(receiver.arrivals[-1], rotated)
            assert verified(receiver.arrivals[-1], subscription["secret"])

            start = first[0].payload["data"]["position"]
            tx, event_id = map(int, start.split("."))
            replayed = await http.post(
                f"{base}/replay",
                json={"after": f"{tx}.{event_id - 1}", "until": first[-1].payload["data"]["position"]},
                headers=parties.platform,
            )
            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["queued"] == len(first)
            await drain(app, worker)
        assert [a.webhook_id for a in receiver.arrivals[-len(first) :]] == [a.webhook_id for a in first]
        assert len(receiver.unique()) == len(first)
        missing = await http.post(f"{base}/deliveries/{'0' * 32}/redeliver", headers=parties.platform)
        assert missing.status_code == 404
        bad = await http.post(f"{base}/replay", json={}, headers=parties.platform)
        assert bad.status_code == 422
        # deleted with its deliveries and their attempts
        assert (await http.delete(base, headers=parties.platform)).status_code == 204
        assert await pending(app, "pending", "delivered", "dead") == 0


async def test_a_paused_subscription_keeps_its_events_until_resumed(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        base = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
        await http.patch(base, json={"status": "paused"}, headers=parties.platform)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        async with worker_of(app) as worker:
            for _ in range(500):
                await worker.run_once()
                if await pending(app) >= 5:
                    break
                await asyncio.sleep(0.01)
            assert worker.in_flight == 0
            assert receiver.arrivals == []
            assert await pending(app) >= 5
            ready = (await http.get("/readyz")).json()
            assert ready["stages"]["notify"]["backlog"] == await pending(app)
            await http.patch(base, json={"status": "active"}, headers=parties.platform)
            await drain(app, worker)
        assert len(receiver.unique()) >= 5


async def test_the_ssrf_guard_refuses_at_delivery_time_and_the_subscription_shows_why(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        # The admin setting is withdrawn after registration (or the host's DNS now answers 127.0.0.1).
        path = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
        async with worker_of(app, webhook_allow_private=False, webhook_failing_after=2) as worker:
            for _ in range(500):
                await worker.run_once()
                await worker.settle()
                shown = (await http.get(path, headers=ADMIN)).json()
                if shown["consecutiveFailures"] >= 2:
                    break
                await asyncio.sleep(0.01)
        assert receiver.arrivals == []
        assert "loopback" in shown["lastError"]
        assert shown["failingSince"] is not None
        assert shown["consecutiveFailures"] >= 2


@contextlib.asynccontextmanager
async def stuck_and_healthy(
    settings: Settings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Parties, Receiver, Receiver]]:
    """The platform subscribed with a receiver that hangs, the seller with a healthy one."""
    async with (
        serving(settings, **FAST_RETRIES) as (app, http),
        receiving(hang=True) as stuck,
        receiving() as healthy,
    ):
        parties = await file_parties(http)
        await subscribe(http, parties.platform, stuck.url)
        await subscribe(http, parties.seller, healthy.url, code=SELLER)
        yield app, http, parties, stuck, healthy


async def test_a_hanging_receiver_does_not_hold_up_another(settings: Settings) -> None:
    async with stuck_and_healthy(settings) as (app, http, parties, stuck, healthy):
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        async with worker_of(app, webhook_timeout_s=300) as worker:
            # The seller's receiver gets every event while the platform's first request still hangs.
            await drain(app, worker, until=lambda: len(healthy.arrivals) >= 5 and stuck.hanging > 0)
            assert stuck.hanging == 1  # one request in flight: the record's next event waits behind it
            assert len(healthy.unique()) >= 5
            stuck.release.set()
            stuck.hang = False
            await drain(app, worker)
        assert positions(stuck.unique()) == sorted(positions(stuck.unique()))
        assert len(stuck.unique()) == len(healthy.unique())


async def test_embedded_mode_delivers_by_itself(settings: Settings) -> None:
    async with (
        serving(settings, embedded_delivery=True, webhook_poll_s=0.05, **FAST_RETRIES) as (_, http),
        receiving() as receiver,
    ):
        parties = await file_parties(http)
        await subscribe(http, parties.platform, receiver.url)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        # (generous: on a shared PostgreSQL server another database's long transaction holds the feed back)
        for _ in range(2400):
            if len(receiver.unique()) >= 5:
                break
            await asyncio.sleep(0.05)
        assert len(receiver.unique()) >= 5


__all__ = ["Receiver", "matched"]


@pytest.mark.postgres_only
async def test_two_workers_share_the_deliveries_in_order_without_sending_one_twice(settings: Settings) -> None:
    """On PostgreSQL several delivery workers claim with SKIP LOCKED: each event goes out once (no failure
    here, so no retry), and a record's events still in order."""
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        await subscribe(http, parties.platform, receiver.url)
        for _ in range(4):
            for answer in await post_triple(http, parties, purchase()):
                assert answer.status_code == 201
        async with worker_of(app) as first, worker_of(app) as second:
            for _ in range(2000):
                await asyncio.gather(first.run_once(), second.run_once())
                await asyncio.gather(first.settle(), second.settle())
                if len(receiver.arrivals) >= 20 and await pending(app) == 0:
                    break
                await asyncio.sleep(0.01)
        ids = [a.webhook_id for a in receiver.arrivals]
        assert len(ids) == len(set(ids)) >= 20
        by_record: dict[str, list[tuple[int, int]]] = {}
        for arrival in receiver.arrivals:
            data = arrival.payload["data"]
            by_record.setdefault(data["recordId"], []).extend(positions([arrival]))
        assert all(p == sorted(p) for p in by_record.values())


async def test_a_dead_delivery_lets_the_record_s_next_event_go(settings: Settings) -> None:
    """A receiver failing past the retry window: each event goes dead in turn — none blocks the next for ever —
    and the delivery list says why."""
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving(fail_next=10**6) as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        # (the setting's floor is a day; the worker here is given a window of a moment)
        async with worker_of(app, webhook_retry_for_s=0.05) as worker:
            await drain(app, worker)
        listed = await http.get(
            f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}/deliveries",
            params={"status": "dead"},
            headers=parties.platform,
        )
        dead = listed.json()["items"]
        assert len(dead) >= 5
        assert all(d["lastStatusCode"] == 500 and d["lastError"] == "HTTP 500" for d in dead)
        assert len({a.webhook_id for a in receiver.refused}) == len(dead)
        assert receiver.arrivals == []


async def test_ceb_xml_subscriptions_get_the_receipt_messages(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        created = await http.post(
            f"/api/v1/enterprises/{PLATFORM}/subscriptions",
            json={"url": receiver.url, "events": ["document_receipt", "status_changed"], "format": "ceb-xml"},
            headers=parties.platform,
        )
        assert created.status_code == 201, created.text
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201
        async with worker_of(app) as worker:
            await drain(app, worker)
        receipts = [a for a in receiver.unique() if a.content_type.startswith("application/xml")]
        roots = sorted(a.body.split(b"<", 2)[2].split(b" ", 1)[0].decode() for a in receipts)
        assert roots == ["CEB312Message", "CEB412Message", "CEB512Message"]
        assert all(b"<returnStatus>120</returnStatus>" in a.body for a in receipts)
        others = [a for a in receiver.unique() if a.content_type.startswith("application/json")]
        assert {a.payload["type"] for a in others} == {"status_changed"}


async def test_a_group_of_outcomes_leaves_the_subscription_s_health_as_its_last_outcomes_say(
    settings: Settings,
) -> None:
    """Outcomes recorded together, in the order they ended: a success clears the failures before it, each
    failure after it counts, and the subscription shows as failing from ``webhook_failing_after`` on."""
    async with serving(settings, **FAST_RETRIES) as (app, http):
        parties = await file_parties(http)
        await subscribe(http, parties.platform, "http://127.0.0.1:9/hooks")
        for _ in range(2):  # two records: two queue heads to claim at once
            for answer in await post_triple(http, parties, purchase()):
                assert answer.status_code == 201
        group_settings = app.state.settings.model_copy(update={"webhook_failing_after": 2, **FAST_RETRIES})
        for _ in range(500):
            await fan_out(app.state.sessionmaker)
            if await pending(app) >= 6:
                break
            await asyncio.sleep(0.01)
        claims = await claim_due(app.state.sessionmaker, group_settings, 10, {}, {})
        assert len(claims) >= 2

        def ok(claimed: Claimed) -> AttemptResult:
            return AttemptResult(claimed, 204, None, 1)

        def failed(claimed: Claimed) -> AttemptResult:
            return AttemptResult(claimed, 500, None, 1)

        async def health() -> tuple[int, bool, str | None]:
            async with app.state.sessionmaker() as session:
                row = (await session.scalars(select(Subscription))).one()
            return row.consecutive_failures, row.failing_since is not None, row.last_error

        first, second = claims[0], claims[1]
        await record_attempts(app.state.sessionmaker, group_settings, [failed(first)])
        assert await health() == (1, False, "HTTP 500")
        await record_attempts(app.state.sessionmaker, group_settings, [failed(first), failed(first)])
        assert await health() == (3, True, "HTTP 500")
        await record_attempts(app.state.sessionmaker, group_settings, [failed(first), ok(second)])
        assert (await health())[:2] == (0, False)
        await record_attempts(app.state.sessionmaker, group_settings, [ok(second), failed(first), failed(first)])
        assert await health() == (2, True, "HTTP 500")
        async with app.state.sessionmaker() as session:
            rows = {d.id: d for d in await session.scalars(select(WebhookDelivery))}
        assert (rows[first.delivery_id].status, rows[first.delivery_id].attempts) == ("pending", 6)
        assert rows[first.delivery_id].lease_until is None
        assert rows[first.delivery_id].first_failed_at is not None
        assert (rows[second.delivery_id].status, rows[second.delivery_id].attempts) == ("delivered", 2)
        assert rows[second.delivery_id].delivered_at is not None
