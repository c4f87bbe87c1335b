"""Subscriptions to the feed (webhooks and AMQP destinations) and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.rules.feed_audience import EventType

SubscriptionFormat = Literal["json", "ceb-xml"]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000)] = Field(
        description="`https://…` (or `http://…`) webhook endpoint; or `amqp://user:pass@host:5672/vhost` with "
        "`exchange` for RabbitMQ"
    )
    exchange: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:\-]+$")] | None = (
        Field(default=None, description="AMQP only: the exchange to publish to (routing key = the event type)")
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=6,
        description="document_receipt (120 / 100 of a document), status_changed (the record's status), "
        "agency_receipt (inspection, tax, FX), inventory_receipt (customs' CEB622), declaration_rejected "
        "(refused before dispatch: quota, limits), dead_letter (a dispatch that went dead)",
    )
    format: SubscriptionFormat = Field(
        default="json",
        description="`json` (the feed event), or `ceb-xml` (the CEB receipt message as the body where the event "
        "carries one — document and inventory receipts; JSON otherwise)",
    )


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "paused"] | None = Field(
        default=None, description="`paused`: events are kept and go out in order on `active` again"
    )
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=6)


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    enterpriseCode: str
    url: str = Field(description="The endpoint; an AMQP URL's password is not shown")
    exchange: str | None
    events: list[str]
    format: str
    status: str
    failingSince: datetime | None = Field(description="Set after consecutive failures; cleared by a success")
    consecutiveFailures: int
    lastError: str | None
    lastErrorAt: datetime | None
    secretRotatedUntil: datetime | None = Field(description="Until then the previous secret signs as well")
    createdAt: datetime
    updatedAt: datetime


class SubscriptionIssued(SubscriptionOut):
    secret: str = Field(description="The signing secret (Standard Webhooks, HMAC-SHA256): shown once")


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    id: uuid.UUID = Field(description="Also the `webhook-id` header: the receiver dedupes on it")
    subscriptionId: uuid.UUID
    eventPosition: str = Field(description="The event's feed cursor")
    eventType: str
    status: str = Field(description="pending, delivered or dead")
    attempts: int
    nextAttemptAt: datetime | None
    lastStatusCode: int | None
    lastError: str | None
    deliveredAt: datetime | None
    createdAt: datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    nextCursor: str | None = Field(description="Pass as `after` for the next page; null on the last")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = Field(default=None, max_length=41, description="Feed cursor: events after it …")
    until: str | None = Field(default=None, max_length=41, description="… up to and including this cursor")
    since: datetime | None = Field(default=None, description="Or a time range: events at or after …")
    before: datetime | None = Field(default=None, description="… and before this moment")


class ReplayResult(BaseModel):
    queued: int = Field(description="Events queued again (or for the first time) for this subscription")
