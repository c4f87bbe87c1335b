"""Cancel (撤销, CEB623) and return (退货, CEB625) requests of a declared inventory: what was filed, the signed
message, its delivery to customs (an outbox row of its own) and customs' answers (CEB624 / CEB626)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import ExactDecimal
from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.match_record import MatchRecord


class InventoryRequest(TimestampMixin, Base):
    __tablename__ = "inventory_request"
    __table_args__ = (
        Index("ix_inventory_request_record", "record_id", "created_at"),
        Index("ix_inventory_request_due", "delivery", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("match_record.id"))
    kind: Mapped[str] = mapped_column(String(8))  # cancel | return
    guid: Mapped[str] = mapped_column(String(36))
    # declared (with customs, waiting for its answer) | approved | rejected
    status: Mapped[str] = mapped_column(String(12))
    # The InvtCancel / InvtRefundHead fields (CEB names), with ``invtRefundList`` for a return.
    fields: Mapped[dict[str, Any]]
    message: Mapped[str] = mapped_column(Text)  # the signed CEB623 / CEB625, as sent
    sender_code: Mapped[str] = mapped_column(String(18))
    returned_value: Mapped[Decimal | None] = mapped_column(ExactDecimal(19, 5))  # quota back once approved
    goods_back_by: Mapped[datetime | None]
    receipts: Mapped[list[Any]]  # customs' answers: {returnStatus, returnInfo, returnTime}
    # Delivery to customs: pending | in_flight | delivered | retry | dead, as a dispatch.
    delivery: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    decided_at: Mapped[datetime | None]

    # Declared only so that the unit of work inserts the referenced rows first; never loaded.
    record: Mapped[MatchRecord] = relationship(lazy="raise", cascade="")
