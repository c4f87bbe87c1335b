"""Webhook signing secrets are stored sealed (AES-GCM under SW_WEBHOOK_SECRET_KEYS), still sign deliveries,
and migration 0014 seals the rows stored in plain text before it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.crypto.secret_box import PREFIX, SecretBox, SecretUnreadable
from app.migrate import upgrade
from app.models import Subscription, WebhookAttempt, WebhookDelivery
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.receiver import receiving
from tests.notify.test_webhook_delivery import FAST_RETRIES, PLATFORM, drain, subscribe, verified, worker_of
from tests.test_migrations import scratch_url  # noqa: F401 - the fixture

KEY, OLD_KEY = "a-webhook-secret-key-of-forty-characters", "the-previous-webhook-secret-key-0123456789"


def test_a_sealed_secret_opens_only_with_its_key_and_its_row() -> None:
    box = SecretBox([KEY])
    row = str(uuid.uuid4())
    sealed = box.seal("whsec_abc", row)
    assert sealed.startswith(PREFIX)
    assert "whsec_abc" not in sealed
    assert box.open(sealed, row) == "whsec_abc"
    with pytest.raises(SecretUnreadable):
        box.open(sealed, str(uuid.uuid4()))  # copied onto another subscription
    with pytest.raises(SecretUnreadable):
        SecretBox([OLD_KEY]).open(sealed, row)
    # a new key first, the old one still read: existing secrets open, new ones are sealed with the new key
    rotated = SecretBox([OLD_KEY, KEY])
    assert rotated.open(sealed, row) == "whsec_abc"
    assert SecretBox([OLD_KEY]).open(rotated.reseal(sealed, row), row) == "whsec_abc"


async def test_secrets_are_stored_sealed_and_still_sign(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        base = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
        rotated = (await http.post(f"{base}/rotate-secret", headers=parties.platform)).json()["secret"]
        async with app.state.sessionmaker() as session:
            row = await session.scalar(select(Subscription))
        assert row is not None
        for stored, shown in ((row.secret, rotated), (row.previous_secret, subscription["secret"])):
            assert stored is not None
            assert stored.startswith(PREFIX)
            assert shown not in stored
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text
        async with worker_of(app) as worker:
            await drain(app, worker)
        assert len(receiver.arrivals) >= 5
        assert all(verified(a, rotated) and verified(a, subscription["secret"]) for a in receiver.arrivals)


async def test_a_secret_no_key_opens_fails_the_attempt_at_once_and_says_why(settings: Settings) -> None:
    """Not sent unsigned, and not left to wait for its lease: the attempt is recorded as failed straight away
    (retried on the usual backoff, in case the keys are put right) and the subscription shows the reason."""
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text
        other_keys = {"webhook_secret_keys": SecretStr(OLD_KEY), "webhook_backoff_base_s": 3600.0}
        async with worker_of(app, **other_keys) as worker:
            for _ in range(500):
                await worker.run_once()
                await worker.settle()
                if await failed_attempts(app) >= 1:
                    break
                await asyncio.sleep(0.01)
        assert receiver.arrivals == []
        async with app.state.sessionmaker() as session:
            failed = (await session.scalars(select(WebhookDelivery).where(WebhookDelivery.attempts > 0))).all()
        assert failed
        assert all(d.lease_until is None and d.status == "pending" for d in failed)
        assert all(d.last_error and "signing secret cannot be read" in d.last_error for d in failed)
        shown = await http.get(f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}", headers=ADMIN)
        assert "signing secret cannot be read" in shown.json()["lastError"]


async def failed_attempts(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookAttempt)) or 0)


def test_migration_0014_seals_the_secrets_stored_before_it(scratch_url: str) -> None:  # noqa: F811
    settings = Settings(database_url=scratch_url, webhook_secret_keys=SecretStr(KEY), _env_file=None)  # type: ignore[call-arg]
    upgrade(settings, "0009_risk_credit")
    row = uuid.uuid4()

    async def run(sql: str, **params: object) -> list[tuple[object, ...]]:
        engine = create_async_engine(scratch_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql), params)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    asyncio.run(
        run(
            "INSERT INTO enterprise (code, name, roles, status, created_at, updated_at) "
            "VALUES ('3120960A01', 'x', '[]', 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    asyncio.run(
        run(
            "INSERT INTO subscription (id, enterprise_code, url, events, format, status, secret, previous_secret, "
            "consecutive_failures, created_at, updated_at) VALUES (:id, '3120960A01', 'https://x.example/h', '[]', "
            "'json', 'active', 'whsec_current', 'whsec_previous', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            id=row if "postgresql" in scratch_url else row.hex,
        )
    )
    upgrade(settings)
    [(secret, previous)] = asyncio.run(run("SELECT secret, previous_secret FROM subscription"))
    box = SecretBox([KEY])
    assert isinstance(secret, str)
    assert isinstance(previous, str)
    assert box.open(secret, str(row)) == "whsec_current"
    assert box.open(previous, str(row)) == "whsec_previous"
