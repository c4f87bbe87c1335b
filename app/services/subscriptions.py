"""Subscriptions of enterprises to the feed: register (the SSRF guard first), list, pause, delete, rotate."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.crypto.secret_box import SecretBox
from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.models import Subscription, WebhookDelivery
from app.notify.target_guard import TargetRefused, allowed_target
from app.pg_listen import notify
from app.rules.webhook_targets import AMQP_SCHEMES
from app.schemas.subscriptions import SubscriptionCreate, SubscriptionOut, SubscriptionPatch
from app.services.delivery_heads import lock_heads, pause_heads, resume_heads
from app.services.enterprises import get_enterprise
from app.services.webhook_delivery import DELIVERY_CHANNEL


def new_secret() -> str:
    """Standard Webhooks style: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


async def check_url(url: str, exchange: str | None, settings: Settings) -> None:
    try:
        target = await allowed_target(url, settings.webhook_allow_private)
    except TargetRefused as exc:
        raise Unprocessable(
            f"The subscription URL is refused: {exc}",
            code="SUBSCRIPTION_URL_REFUSED",
            errors=[{"path": "url", "message": str(exc), "type": "url"}],
        ) from exc
    is_amqp = target.scheme in AMQP_SCHEMES
    if is_amqp != (exchange is not None):
        message = "an amqp:// URL needs an exchange" if is_amqp else "exchange is for amqp:// URLs only"
        raise Unprocessable(
            f"The subscription is incomplete: {message}",
            code="SUBSCRIPTION_URL_REFUSED",
            errors=[{"path": "exchange", "message": message, "type": "exchange"}],
        )


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.webhook_secret_key_list())


async def create_subscription(
    session: AsyncSession, settings: Settings, code: str, data: SubscriptionCreate
) -> tuple[Subscription, str]:
    """The new subscription and its signing secret (shown once; stored sealed)."""
    await get_enterprise(session, code)
    await check_url(data.url, data.exchange, settings)
    now = utcnow()
    subscription_id, secret = uuid.uuid4(), new_secret()
    subscription = Subscription(
        id=subscription_id,
        enterprise_code=code,
        url=data.url,
        exchange=data.exchange,
        events=sorted(set(data.events)),
        format=data.format,
        status="active",
        secret=secret_box(settings).seal(secret, str(subscription_id)),
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    await session.flush()
    return subscription, secret


async def list_subscriptions(session: AsyncSession, code: str) -> list[Subscription]:
    await get_enterprise(session, code)
    query = select(Subscription).where(Subscription.enterprise_code == code).order_by(Subscription.created_at)
    return list(await session.scalars(query))


async def get_subscription(
    session: AsyncSession, code: str, subscription_id: uuid.UUID, *, for_update: bool = False
) -> Subscription:
    query = select(Subscription).where(Subscription.id == subscription_id, Subscription.enterprise_code == code)
    if for_update:
        query = query.with_for_update()
    subscription = await session.scalar(query)
    if subscription is None:
        raise NotFound(f"No subscription {subscription_id} of {code}", code="SUBSCRIPTION_NOT_FOUND")
    return subscription


async def patch_subscription(
    session: AsyncSession, code: str, subscription_id: uuid.UUID, patch: SubscriptionPatch
) -> Subscription:
    # Before the subscription's row: the order of every transaction that changes the queues' heads.
    await lock_heads(session, exclusive=True)
    subscription = await get_subscription(session, code, subscription_id, for_update=True)
    if patch.status is not None and patch.status != subscription.status:
        subscription.status = patch.status
        await session.flush()
        if patch.status == "active":
            await resume_heads(session, subscription.id)
            await notify(session, DELIVERY_CHANNEL)  # its held deliveries are due now
        else:
            await pause_heads(session, subscription.id)
    if patch.events is not None:
        subscription.events = sorted(set(patch.events))
    subscription.updated_at = utcnow()
    await session.flush()
    return subscription


async def delete_subscription(session: AsyncSession, code: str, subscription_id: uuid.UUID) -> None:
    subscription = await get_subscription(session, code, subscription_id, for_update=True)
    # Deliveries first: SQLite does not enforce ON DELETE CASCADE unless asked per connection.
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id))
    await session.delete(subscription)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, settings: Settings, code: str, subscription_id: uuid.UUID
) -> tuple[Subscription, str]:
    """A new secret signs from now on; the old one signs as well (a second signature) for the overlap period,
    so that the receiver can switch over without missing a delivery."""
    subscription = await get_subscription(session, code, subscription_id, for_update=True)
    now = utcnow()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_until = now + timedelta(seconds=settings.webhook_secret_overlap_s)
    secret = new_secret()
    subscription.secret = secret_box(settings).seal(secret, str(subscription.id))
    subscription.updated_at = now
    await session.flush()
    return subscription, secret


def shown_url(url: str) -> str:
    """The URL without an AMQP password (a webhook URL has none)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def subscription_out(s: Subscription) -> SubscriptionOut:
    rotating = s.previous_secret_until if s.previous_secret_until and s.previous_secret_until > utcnow() else None
    return SubscriptionOut(
        id=s.id,
        enterpriseCode=s.enterprise_code,
        url=shown_url(s.url),
        exchange=s.exchange,
        events=list(s.events),
        format=s.format,
        status=s.status,
        failingSince=s.failing_since,
        consecutiveFailures=s.consecutive_failures,
        lastError=s.last_error,
        lastErrorAt=s.last_error_at,
        secretRotatedUntil=rotating,
        createdAt=s.created_at,
        updatedAt=s.updated_at,
    )
