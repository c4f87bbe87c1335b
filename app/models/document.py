from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import utcnow
from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.match_record import MatchRecord


class RawMessage(Base):
    """A request body exactly as received, kept for audit and replay analysis.

    Partitioned by month of ``received_at`` on PostgreSQL, where the primary key is (``id``, ``received_at``);
    ``id`` is a UUID and alone identifies the row (docs/storage.md)."""

    __tablename__ = "raw_message"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    sender: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(TimestampMixin, Base):
    """One order, payment or waybill, keyed by its CEB natural key.

    ``owner_code``/``business_no`` are (ebpCode, orderNo), (payCode, payTransactionId) or
    (logisticsCode, logisticsNo). The full CEB content lives in ``payload`` (decimals as strings).
    """

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("doc_type", "owner_code", "business_no"),
        Index("ix_document_order_no", "order_no", "doc_type"),
        Index("ix_document_business_no", "business_no", "doc_type"),
        Index("ix_document_record", "record_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    doc_type: Mapped[str] = mapped_column(String(8))  # order | payment | waybill
    owner_code: Mapped[str] = mapped_column(String(18))
    business_no: Mapped[str] = mapped_column(String(60))
    order_no: Mapped[str] = mapped_column(String(60))
    ebp_code: Mapped[str | None] = mapped_column(String(18))  # null for a waybill without the extension
    state: Mapped[str] = mapped_column(String(12))  # active | draft | cancelled
    version: Mapped[int] = mapped_column(default=1)
    app_type: Mapped[str] = mapped_column(String(1))  # appType of the submission that made this version
    guid: Mapped[str] = mapped_column(String(36))
    app_time: Mapped[str] = mapped_column(String(14))
    content_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    sender_code: Mapped[str] = mapped_column(String(18))
    # No foreign key: raw_message is partitioned by month on PostgreSQL, and a key into it would have to
    # name its partition column (docs/storage.md). A pruned month leaves this pointing at its export.
    raw_message_id: Mapped[uuid.UUID]
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("match_record.id"))

    # Declared only so that the unit of work inserts the referenced rows first (one flush per request writes
    # everything); never loaded — code reads and writes the id columns.
    record: Mapped[MatchRecord | None] = relationship(lazy="raise", cascade="")
    raw_message: Mapped[RawMessage] = relationship(
        lazy="raise", cascade="", primaryjoin="foreign(Document.raw_message_id) == RawMessage.id"
    )
