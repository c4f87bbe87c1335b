from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.models.base import Base


class AuditEntry(Base):
    """One administrative act, written in the transaction of the act and never changed: a trigger refuses
    UPDATE and DELETE (migration 0006), because the application connects as the table's owner, whom a REVOKE
    would not bind.

    ``actor_id`` is the key id of an admin or official, or the code of an enterprise (``actor_key_id`` is
    then the key it used); ``action`` a stable dotted name (``key.issued``, ``enterprise.suspended`` …);
    ``before`` / ``after`` the target as the API shows it, absent when there was none before or after.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_action", "action", "id"),
        Index("ix_audit_entry_actor", "actor_id", "id"),
        Index("ix_audit_entry_target", "target_kind", "target_id", "id"),
        Index("ix_audit_entry_at", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))  # admin | official | enterprise
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_key_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    request_id: Mapped[str | None] = mapped_column(String(200))
