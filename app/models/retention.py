from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class PrunedPurchase(Base):
    """A purchase whose rows `sw prune-purchases` exported and deleted (docs/storage.md). Its key stays for ever,
    so that a late resend of one of its documents is refused (``PURCHASE_ARCHIVED``) rather than taken as the
    first document of a new purchase, which would be declared a second time."""

    __tablename__ = "pruned_purchase"
    __table_args__ = (Index("ix_pruned_purchase_order_no", "order_no"),)

    ebp_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    order_no: Mapped[str] = mapped_column(String(60), primary_key=True)
    record_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(24))  # the record's final status
    last_change_at: Mapped[datetime]  # the record's updated_at when it was pruned
    pruned_at: Mapped[datetime]
    export: Mapped[str] = mapped_column(String(500))  # the batch's manifest, where its rows went
