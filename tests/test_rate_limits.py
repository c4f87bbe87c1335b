"""Rate limits per enterprise and route class, checked before a request is accepted: counted in the process
without Redis, in Redis (shared by every API process) with it. The clock is fixed, so no test depends on
where a window boundary falls."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.services.rate_limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from tests.conftest import ADMIN, serving
from tests.factories import Parties, file_parties, purchase

REDIS_URL = "redis://127.0.0.1:6379/0"
NOW = 1_800_000_010.0  # 10 s into a 60 s window
PLATFORM = "3120960A01"


def _redis_present() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


needs_redis = pytest.mark.skipif(not _redis_present(), reason="no Redis on 127.0.0.1:6379")


@asynccontextmanager
async def _limited(
    settings: Settings, limiters: list[RateLimiter], **overrides: Any
) -> AsyncIterator[list[tuple[FastAPI, httpx.AsyncClient]]]:
    """One app per limiter (as many API processes), limits of 3 intake requests and 2 reads per window."""
    limits = {"rate_limit_intake": 3, "rate_limit_queries": 2, "rate_limit_window_s": 60} | overrides
    async with AsyncExitStack() as stack:
        apps = [await stack.enter_async_context(serving(settings, wait=False, **limits)) for _ in limiters]
        for (app, _), limiter in zip(apps, limiters, strict=True):
            await app.state.rate_limiter.aclose()
            app.state.rate_limiter = limiter
        yield apps


async def _order(client: httpx.AsyncClient, parties: Parties) -> httpx.Response:
    return await client.post("/api/v1/orders", json=purchase()[0], headers=parties.platform)


async def _stored_orders(client: httpx.AsyncClient) -> int:
    listed = await client.get("/api/v1/admin/submissions", headers=ADMIN)
    return sum(1 for s in listed.json()["items"] if s["documentType"] == "order")


async def test_in_process_limit_per_enterprise_and_route_class(settings: Settings) -> None:
    async with _limited(settings, [LocalRateLimiter(clock=lambda: NOW)]) as [(_, client)]:
        parties = await file_parties(client)
        for _ in range(3):
            assert (await _order(client, parties)).status_code == 202
        refused = await _order(client, parties)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "50"
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.json()["code"], refused.json()["retryAfterSeconds"]) == ("RATE_LIMITED", 50)
        assert await _stored_orders(client) == 3  # the refused one was never accepted; the others all were

        # Another enterprise, and the same enterprise's reads, count apart.
        payment = await client.post("/api/v1/payments", json=purchase()[1], headers=parties.payment)
        assert payment.status_code == 202
        assert (await client.get(f"/api/v1/enterprises/{PLATFORM}", headers=parties.platform)).status_code == 200
        assert (await client.get(f"/api/v1/enterprises/{PLATFORM}", headers=parties.platform)).status_code == 200
        assert (await client.get(f"/api/v1/enterprises/{PLATFORM}", headers=parties.platform)).status_code == 429
        for _ in range(5):  # admins and officials are not limited
            assert (await client.get(f"/api/v1/enterprises/{PLATFORM}", headers=ADMIN)).status_code == 200


async def test_an_admin_sets_an_enterprises_own_limit_and_it_is_audited(settings: Settings) -> None:
    async with _limited(settings, [LocalRateLimiter(clock=lambda: NOW)]) as [(_, client)]:
        parties = await file_parties(client)
        for _ in range(3):
            assert (await _order(client, parties)).status_code == 202
        assert (await _order(client, parties)).status_code == 429  # the 4th, counted

        raised = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"intakeRateLimit": 6}, headers=ADMIN)
        assert raised.status_code == 200, raised.text
        assert (raised.json()["intakeRateLimit"], raised.json()["queryRateLimit"]) == (6, None)
        assert (await _order(client, parties)).status_code == 202  # the 5th
        assert (await _order(client, parties)).status_code == 202  # the 6th
        assert (await _order(client, parties)).status_code == 429

        unlimited = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"intakeRateLimit": 0}, headers=ADMIN)
        assert unlimited.status_code == 200
        assert (await _order(client, parties)).status_code == 202
        back = await client.patch(f"/api/v1/enterprises/{PLATFORM}", json={"intakeRateLimit": None}, headers=ADMIN)
        assert back.json()["intakeRateLimit"] is None
        assert (await _order(client, parties)).status_code == 429  # the default, 3, again

        trail = await client.get("/api/v1/audit", params={"action": "enterprise.rate_limits_changed"}, headers=ADMIN)
        changes = [(e["before"]["intakeRateLimit"], e["after"]["intakeRateLimit"]) for e in trail.json()["items"]]
        assert changes == [(0, None), (6, 0), (None, 6)]
        forbidden = await client.patch(
            f"/api/v1/enterprises/{PLATFORM}", json={"intakeRateLimit": 9}, headers=parties.platform
        )
        assert forbidden.status_code == 403


@needs_redis
async def test_redis_counts_for_every_api_process(settings: Settings) -> None:
    prefix = f"sw:test:{uuid.uuid4().hex}"
    limiters: list[RateLimiter] = [RedisRateLimiter(REDIS_URL, clock=lambda: NOW, prefix=prefix) for _ in range(2)]
    async with _limited(settings, limiters) as [(_, first), (_, second)]:
        parties = await file_parties(first)
        answers = [(await _order(client, parties)).status_code for client in (first, second, first, second)]
        assert answers == [202, 202, 202, 429]  # 3 in all, wherever they were sent
        assert (await _order(first, parties)).status_code == 429
        assert await _stored_orders(first) == 3
        ttl = await limiters[0].client.ttl(f"{prefix}:intake:{PLATFORM}:60:{int(NOW // 60)}")  # type: ignore[attr-defined]
        assert 0 < ttl <= 61  # Redis forgets the window by itself


async def test_without_redis_the_limiter_lets_requests_through(settings: Settings) -> None:
    unreachable: list[RateLimiter] = [RedisRateLimiter("redis://127.0.0.1:1/0", clock=lambda: NOW)]
    async with _limited(settings, unreachable, rate_limit_intake=1) as [(_, client)]:
        parties = await file_parties(client)
        for _ in range(3):  # over the limit of 1, but the limit cannot be counted: fairness yields, intake holds
            assert (await _order(client, parties)).status_code == 202


async def test_local_limiter_counts_each_window_size_apart() -> None:
    """The enterprises' minute and the public routes' hour side by side: a new minute must not wipe the hour's
    counts (one window index shared by every size did), nor the hour's index reset the minute's."""
    now = [NOW]
    limiter = LocalRateLimiter(clock=lambda: now[0])
    assert (await limiter.hit("public:complaints:1.2.3.4", 2, 3600)).allowed
    assert (await limiter.hit("intake:P", 1, 60)).allowed
    assert (await limiter.hit("public:complaints:1.2.3.4", 2, 3600)).allowed
    now[0] += 60  # the next minute, the same hour
    assert (await limiter.hit("intake:P", 1, 60)).allowed  # a new minute: counted afresh
    assert not (await limiter.hit("public:complaints:1.2.3.4", 2, 3600)).allowed  # the hour still remembers
    assert not (await limiter.hit("intake:P", 1, 60)).allowed
    now[0] += 3600
    assert (await limiter.hit("public:complaints:1.2.3.4", 2, 3600)).allowed


async def test_a_limit_of_zero_is_no_limit_everywhere(settings: Settings) -> None:
    limiter = LocalRateLimiter(clock=lambda: NOW)
    assert all([(await limiter.hit("b", 0, 60)).allowed for _ in range(5)])
    zero = {"public_complaints_per_hour": 0, "public_quota_checks_per_hour": 0, "public_quota_checks_per_id_day": 0}
    async with serving(settings, **zero) as (_, client):
        report = {"kind": "stolen_identity", "what": "本人未购买"}
        for _ in range(8):  # the default would refuse the sixth
            assert (await client.post("/api/v1/public/complaints", json=report)).status_code == 201


@needs_redis
async def test_public_limits_are_shared_by_every_api_process(settings: Settings) -> None:
    prefix = f"sw:test:{uuid.uuid4().hex}"
    limiters: list[RateLimiter] = [RedisRateLimiter(REDIS_URL, clock=lambda: NOW, prefix=prefix) for _ in range(2)]
    async with _limited(settings, limiters, public_complaints_per_hour=3) as [(_, first), (_, second)]:
        report = {"kind": "stolen_identity", "what": "本人未购买"}
        answers = [(await c.post("/api/v1/public/complaints", json=report)).status_code for c in (first, second) * 2]
        assert answers == [201, 201, 201, 429]  # one budget of 3, wherever they were sent
        check = {"idNumber": "33010619900101123X", "name": "王小明", "telephone": "13800138000"}
        assert (await first.post("/api/v1/public/quota-check", json=check)).status_code == 404
        keys = [k.decode() async for k in limiters[0].client.scan_iter(f"{prefix}:*")]  # type: ignore[attr-defined]
        assert any(k.startswith(f"{prefix}:public:quota-id:") for k in keys)
        assert not any("33010619900101123X" in k for k in keys)  # the ID number only as a keyed hash
