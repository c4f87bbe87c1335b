"""Credit levels and their history, supervision profiles, risk counters and warnings."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import ExactDecimal, utcnow
from app.models.base import Base


class CreditAssessment(Base):
    """One decision of customs on an enterprise's credit level (认定), with its basis and date: the history.
    The current level is also kept on ``enterprise.credit_level`` for the declare stage."""

    __tablename__ = "credit_assessment"
    __table_args__ = (Index("ix_credit_assessment_enterprise", "enterprise_code", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    enterprise_code: Mapped[str] = mapped_column(ForeignKey("enterprise.code"))
    level: Mapped[str] = mapped_column(String(24))
    previous_level: Mapped[str] = mapped_column(String(24))
    basis: Mapped[str] = mapped_column(Text)
    effective_date: Mapped[date]
    set_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupervisionProfileRow(Base):
    """An official's supervision profile for one credit level; levels without a row use the settings."""

    __tablename__ = "supervision_profile"

    level: Mapped[str] = mapped_column(String(24), primary_key=True)
    inspection_rate: Mapped[Decimal] = mapped_column(ExactDecimal(7, 6))
    block: Mapped[bool] = mapped_column(default=False)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskLink(Base):
    """That ``subject`` was seen with ``other`` in time ``bucket`` (a day): R1–R4 count distinct ``other``
    per ``subject`` over a window. Both are keyed hashes, never a person's data (app/rules/risk.py)."""

    __tablename__ = "risk_link"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    other: Mapped[str] = mapped_column(String(32), primary_key=True)


class RiskCount(Base):
    """How many times ``subject`` was seen in time ``bucket`` (an hour): kept by upsert (count + n)."""

    __tablename__ = "risk_count"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class RiskWarning(Base):
    """A rule fired: the officials' queue (open → acknowledged | dismissed | escalated). R1–R7 fire for a
    declaration (``record_id`` and its three parties); R8 for an enterprise (no record: the enterprise's code in
    the column of its role, the others null), once per enterprise and period (``dedupe_key``)."""

    __tablename__ = "risk_warning"
    __table_args__ = (
        Index("ix_risk_warning_status", "status", "id"),
        Index("ix_risk_warning_record", "record_id"),
        Index("ix_risk_warning_ebc", "ebc_code", "id"),
        Index("ix_risk_warning_ebp", "ebp_code", "id"),
        UniqueConstraint("dedupe_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("match_record.id"))
    rule: Mapped[str] = mapped_column(String(8))
    ebp_code: Mapped[str | None] = mapped_column(String(18))
    ebc_code: Mapped[str | None] = mapped_column(String(18))
    logistics_code: Mapped[str | None] = mapped_column(String(18))
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Complaint(Base):
    """投诉举报: anyone's report (a stolen identity, goods, an enterprise), triaged by officials."""

    __tablename__ = "complaint"
    __table_args__ = (Index("ix_complaint_status", "status", "id"), Index("ix_complaint_enterprise", "enterprise_code"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))
    enterprise_code: Mapped[str | None] = mapped_column(String(18))
    # What the person reported, as sent (officials read it; nothing of it is published).
    report: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="received")
    record_ids: Mapped[list[Any]]
    note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
