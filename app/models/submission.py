from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.models.base import Base


class Submission(Base):
    """One accepted document submission (returnStatus 2), in the order it was accepted: the match stage's
    queue and, once processed, its business receipt (120 stored, or 100 with the reason) kept for good.

    Partitioned by month of ``accepted_at`` on PostgreSQL (primary key (``seq``, ``accepted_at``); ``seq`` comes
    from one sequence and stays unique and ordered across months — docs/storage.md).

    Accepting writes only this row and the raw message; the matcher reads pending rows in ``seq`` order,
    applies them to the documents and records, and fills in the outcome in the same transaction.
    """

    __tablename__ = "submission"
    __table_args__ = (
        # The matcher's queue: only pending rows are indexed, so the index stays small however long the log.
        Index(
            "ix_submission_pending",
            "seq",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # The dead ones, counted by /readyz and /metrics and listed for people: few, and found without a scan.
        Index(
            "ix_submission_dead",
            "seq",
            postgresql_where=text("state = 'dead'"),
            sqlite_where=text("state = 'dead'"),
        ),
        Index("ix_submission_key", "doc_type", "owner_code", "business_no", "seq"),
        Index("ix_submission_order_no", "order_no", "seq"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    doc_type: Mapped[str] = mapped_column(String(8))
    owner_code: Mapped[str] = mapped_column(String(18))
    business_no: Mapped[str] = mapped_column(String(60))
    order_no: Mapped[str] = mapped_column(String(60))
    app_type: Mapped[str] = mapped_column(String(1))
    app_status: Mapped[str] = mapped_column(String(1))
    guid: Mapped[str] = mapped_column(String(36))
    content_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    sender_code: Mapped[str] = mapped_column(String(18))
    actor: Mapped[str] = mapped_column(String(64))
    raw_message_id: Mapped[uuid.UUID]  # no foreign key: raw_message is partitioned (docs/storage.md)
    item_index: Mapped[int] = mapped_column(Integer)
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None]
    # The business result: the HTTP status the document would have had, and the receipt or problem.
    outcome: Mapped[str | None] = mapped_column(String(8))  # stored | replayed | rejected
    http_status: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None]
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("document.id"), index=True)
    error: Mapped[str | None] = mapped_column(String(2000))  # why a dead submission could not be processed
