"""The audit trail on the wire (``GET /api/v1/audit``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ActorKind = Literal["admin", "official", "enterprise"]


class AuditEntryOut(BaseModel):
    id: int = Field(description="Increasing with time of writing")
    at: datetime
    actorKind: ActorKind
    actorId: str = Field(description="An admin's or official's key id, or the enterprise's code")
    actorKeyId: str | None = Field(description="The key an enterprise acted with")
    action: str = Field(description="Stable dotted name, e.g. `key.revoked`, `enterprise.suspended`")
    targetKind: str
    targetId: str
    before: dict[str, Any] | None = Field(description="The target as the API showed it before; null if new")
    after: dict[str, Any] | None = Field(description="The target as the API shows it after; null if removed")
    requestId: str | None = Field(description="X-Request-ID of the request that did it")


class AuditPage(BaseModel):
    items: list[AuditEntryOut] = Field(description="Newest first")
    nextCursor: str | None = Field(description="Pass as `cursor` for older entries; null at the end")


class RawMessageOut(BaseModel):
    id: uuid.UUID
    sha256: str
    contentType: str
    sender: str
    receivedAt: datetime
    size: int = Field(description="Bytes, as received")
    body: str = Field(description="The body as received: UTF-8 text, or base64 if `encoding` says so")
    encoding: Literal["utf-8", "base64"]
