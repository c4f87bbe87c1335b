"""Enterprises' subscriptions to the feed, and the webhook / AMQP deliveries made for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.models.base import Base, TimestampMixin


class Subscription(TimestampMixin, Base):
    """An endpoint (https URL or AMQP exchange) an enterprise has the feed's events pushed to."""

    __tablename__ = "subscription"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    enterprise_code: Mapped[str] = mapped_column(ForeignKey("enterprise.code"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    exchange: Mapped[str | None] = mapped_column(String(255))  # AMQP destinations only
    events: Mapped[list[Any]]
    format: Mapped[str] = mapped_column(String(16))  # json | ceb-xml
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused
    # Sealed (app/crypto/secret_box.py, AES-GCM under SW_WEBHOOK_SECRET_KEYS), never the secret itself.
    secret: Mapped[str] = mapped_column(String(255))
    # After a rotation the old secret still signs (a second signature) until ``previous_secret_until``.
    previous_secret: Mapped[str | None] = mapped_column(String(255))
    previous_secret_until: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One feed event for one subscription: pending until delivered or dead. Its id is the ``webhook-id``
    the receiver dedupes on, stable over retries, redeliveries and replays."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_order", "subscription_id", "ordering_key", "event_tx", "event_id"),
        # The pending deliveries alone: whether a record's earlier event is still pending for the subscription
        # (the head-of-queue test of every claim) is one probe, however many of its events were delivered.
        Index(
            "ix_webhook_delivery_pending_head",
            "subscription_id",
            "ordering_key",
            "event_tx",
            "event_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The claim's walk: the ready pending deliveries in due order, so that a claim reads about as many rows
        # as it takes, not the whole backlog.
        Index(
            "ix_webhook_delivery_ready",
            "next_attempt_at",
            "event_tx",
            "event_id",
            postgresql_where=text("status = 'pending' AND ready = true"),
            sqlite_where=text("status = 'pending' AND ready = 1"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscription.id", ondelete="CASCADE"))
    # The event's feed position (app/lifecycle/feed.py): the order deliveries of one record keep.
    event_tx: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(32))
    # The record (or, before it has one, the document) whose events go out one after another.
    ordering_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Pending and the earliest pending delivery of its (subscription, ordering_key) queue — the head, the one
    # the claim may take (kept so by app/services/delivery_heads.py). Meaningless once not pending.
    ready: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    first_failed_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookAttempt(Base):
    """Each try of a delivery: what the endpoint answered, or why it could not be reached. Partitioned by month
    of ``at`` on PostgreSQL (docs/storage.md)."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)


class FeedCursor(Base):
    """How far a reader of the feed (the fan-out stage) has come, advanced in the transaction of its work."""

    __tablename__ = "feed_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    tx: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
