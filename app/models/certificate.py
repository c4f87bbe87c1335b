from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import utcnow
from app.models.base import Base


class Certificate(Base):
    """An X.509 certificate filed for an enterprise (备案证书): its signed CEB XML is verified with it.

    ``fingerprint`` (SHA-256 of the DER) finds the certificate a message carries in ``KeyInfo``; it is unique
    across enterprises, so a certificate speaks for one enterprise only. ``public_key`` is kept as read at
    filing (SM2: the 64-byte point; RSA: SubjectPublicKeyInfo DER), so a message's check parses no ASN.1."""

    __tablename__ = "certificate"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    enterprise_code: Mapped[str] = mapped_column(ForeignKey("enterprise.code"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(8))  # SM2 | RSA
    serial_number: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(500))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    der: Mapped[bytes] = mapped_column(LargeBinary)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
