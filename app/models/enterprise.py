from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.models.base import Base, TimestampMixin


class Enterprise(TimestampMixin, Base):
    """A filed enterprise (备案企业), used by every agency."""

    __tablename__ = "enterprise"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16), default="active")
    # What a missing ds:Signature on its CEB XML means: off | verify-if-present | required (app/rules/signatures.py)
    signature_policy: Mapped[str] = mapped_column(String(20), default="verify-if-present")
    # Requests per rate-limit window; None: the defaults of the settings (SW_RATE_LIMIT_*), 0: no limit.
    rate_limit_intake: Mapped[int | None]
    rate_limit_queries: Mapped[int | None]
    # The customs credit level now (app/rules/credit.py); its history is ``credit_assessment``.
    credit_level: Mapped[str] = mapped_column(String(24), default="regular")


class ApiKey(Base):
    """An API key, stored as a SHA-256 of the whole key; the prefix finds the row."""

    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    principal_kind: Mapped[str] = mapped_column(String(16))  # admin | official | enterprise
    enterprise_code: Mapped[str | None] = mapped_column(ForeignKey("enterprise.code"), index=True)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # Refused from this time on (a rotation sets it on the key it replaces, after the overlap).
    expires_at: Mapped[datetime | None]
    # Written at most once a minute per key and process (app/services/key_use.py), not on every request.
    last_used_at: Mapped[datetime | None]


class Delegation(TimestampMixin, Base):
    """委托: ``agent_code`` may transmit ``document_types`` on behalf of ``principal_code``."""

    __tablename__ = "delegation"
    __table_args__ = (
        UniqueConstraint("principal_code", "agent_code"),
        Index("ix_delegation_agent", "agent_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    principal_code: Mapped[str] = mapped_column(ForeignKey("enterprise.code"))
    agent_code: Mapped[str] = mapped_column(ForeignKey("enterprise.code"))
    document_types: Mapped[list[Any]]
    revoked_at: Mapped[datetime | None]
