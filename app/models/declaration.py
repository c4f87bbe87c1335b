from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ExactDecimal, utcnow
from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.match_record import MatchRecord


class Goods(TimestampMixin, Base):
    """商品备案: a seller's item, with what the inventory and the tax need."""

    __tablename__ = "goods"

    ebc_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    item_no: Mapped[str] = mapped_column(String(30), primary_key=True)
    gcode: Mapped[str] = mapped_column(String(10))
    gname: Mapped[str] = mapped_column(String(250))
    unit1: Mapped[str] = mapped_column(String(3))
    qty1_factor: Mapped[Decimal] = mapped_column(ExactDecimal(19, 5))
    unit2: Mapped[str | None] = mapped_column(String(3))
    qty2_factor: Mapped[Decimal | None] = mapped_column(ExactDecimal(19, 5))
    country: Mapped[str] = mapped_column(String(3))
    vat_rate: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    consumption_tax_rate: Mapped[Decimal] = mapped_column(ExactDecimal(6, 4))
    positive_list: Mapped[bool] = mapped_column(Boolean)


class Declaration(Base):
    """The inventory (清单, CEB621) composed when a record matched, with its tax and limits outcome."""

    __tablename__ = "declaration"
    __table_args__ = (Index("ix_declaration_buyer_year", "buyer_id_number", "decl_year"),)

    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("match_record.id"), primary_key=True)
    inventory: Mapped[dict[str, Any]]
    tax: Mapped[dict[str, Any]]
    dutiable_value: Mapped[Decimal] = mapped_column(ExactDecimal(19, 5))
    buyer_id_number: Mapped[str] = mapped_column(String(60))
    decl_year: Mapped[int] = mapped_column(Integer)
    counts_to_quota: Mapped[bool] = mapped_column(Boolean)
    # What an approved return gave back to the buyer's quota: the quota counts dutiable_value − returned_value.
    returned_value: Mapped[Decimal] = mapped_column(ExactDecimal(19, 5), default=Decimal(0), server_default="0")
    rejection: Mapped[dict[str, Any] | None]
    # The risk and credit decision (app/rules/supervision.py): {decision: release|inspect|block, reasons, …}.
    risk: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Declared only so that the unit of work inserts the referenced rows first; never loaded.
    record: Mapped[MatchRecord] = relationship(lazy="raise", cascade="")


class Dispatch(TimestampMixin, Base):
    """The outbox: one row per (record, agency); its id is the agency-side idempotency key."""

    __tablename__ = "dispatch"
    __table_args__ = (
        UniqueConstraint("record_id", "agency"),
        Index("ix_dispatch_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("match_record.id"))
    agency: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))  # pending | in_flight | delivered | retry | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    delivered_at: Mapped[datetime | None]

    # Declared only so that the unit of work inserts the referenced rows first; never loaded.
    record: Mapped[MatchRecord] = relationship(lazy="raise", cascade="")


class DispatchAttempt(Base):
    """One call to an agency. Partitioned by month of ``started_at`` on PostgreSQL (docs/storage.md)."""

    __tablename__ = "dispatch_attempt"
    __table_args__ = (Index("ix_dispatch_attempt_dispatch", "dispatch_id", "attempt_no"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    dispatch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dispatch.id"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(12))  # delivered | retry | dead
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000))


class AgencyReceipt(Base):
    """An agency's answer (回执), from the synchronous reply or a signed callback."""

    __tablename__ = "agency_receipt"
    __table_args__ = (
        Index("ix_agency_receipt_record", "record_id", "received_at"),
        UniqueConstraint("callback_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("match_record.id"))
    agency: Mapped[str] = mapped_column(String(32))
    dispatch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("dispatch.id"))
    return_status: Mapped[str] = mapped_column(String(10))
    return_info: Mapped[str] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(String(12))  # reply | callback
    callback_id: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
