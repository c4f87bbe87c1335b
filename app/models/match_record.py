from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ExactDecimal, utcnow
from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.document import Document


class MatchRecord(TimestampMixin, Base):
    """三单交换记录: one per purchase, keyed by (ebpCode, orderNo)."""

    __tablename__ = "match_record"
    __table_args__ = (
        UniqueConstraint("ebp_code", "order_no"),
        Index("ix_match_record_order_no", "order_no"),
        Index("ix_match_record_status_updated", "status", "updated_at", "id"),
        Index("ix_match_record_updated", "updated_at", "id"),
        Index("ix_match_record_ebc_code", "ebc_code"),
        Index("ix_match_record_buyer", "buyer_id_number"),
        Index("ix_match_record_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    ebp_code: Mapped[str] = mapped_column(String(18))
    order_no: Mapped[str] = mapped_column(String(60))
    ebc_code: Mapped[str | None] = mapped_column(String(18))
    buyer_id_number: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(24))
    missing: Mapped[list[Any]]
    discrepancies: Mapped[list[Any]]
    matched_at: Mapped[datetime | None]
    # Per agency: {status, returnStatus, returnInfo, updatedAt}, kept from the agency receipts.
    agencies: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rejection: Mapped[dict[str, Any] | None]
    # What the statistics read (app/rules/rollups.py): when the documents came (acceptance time of the first
    # and of the latest), when customs accepted the inventory, when the record reached CLEARED or REJECTED,
    # and the declaration's tax, trade mode and port.
    documents_first_at: Mapped[datetime | None]
    documents_last_at: Mapped[datetime | None]
    customs_accepted_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    tax_total: Mapped[Decimal | None] = mapped_column(ExactDecimal(19, 5))
    trade_mode: Mapped[str | None] = mapped_column(String(8))
    port_code: Mapped[str | None] = mapped_column(String(8))


class RecordEvent(Base):
    """Append-only audit trail; the events with a record id form that record's timeline.

    Partitioned by month of ``at`` on PostgreSQL (primary key (``id``, ``at``)); ``id`` comes from one sequence,
    so the feed's position (``tx``, ``id``) orders events across months (docs/storage.md)."""

    __tablename__ = "record_event"
    __table_args__ = (
        Index("ix_record_event_record", "record_id", "id"),
        Index("ix_record_event_position", "tx", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("match_record.id"))
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("document.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]]
    # The writing transaction's id on PostgreSQL (a database default), 0 on SQLite: with ``id`` it is the
    # event's position in the feed (app/lifecycle/feed.py).
    tx: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))

    # Declared only so that the unit of work inserts the referenced rows first; never loaded.
    record: Mapped[MatchRecord | None] = relationship(lazy="raise", cascade="")
    document: Mapped[Document | None] = relationship(lazy="raise", cascade="")
