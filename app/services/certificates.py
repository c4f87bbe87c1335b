"""Filing certificates: read and check a PEM, keep it for the enterprise, list, revoke. Services flush; the
request's unit of work commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto.certificates import CertificateUnreadable, read_certificate
from app.db import utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Certificate
from app.schemas.certificates import CertificateCreate
from app.services.enterprises import get_enterprise


async def file_certificate(session: AsyncSession, code: str, data: CertificateCreate) -> Certificate:
    await get_enterprise(session, code)
    try:
        info = read_certificate(data.pem.encode())
    except CertificateUnreadable as exc:
        raise Unprocessable(
            f"The certificate cannot be used: {exc}",
            code="CERTIFICATE_UNREADABLE",
            errors=[{"path": "pem", "message": str(exc)}],
        ) from None
    now = utcnow()
    if info.not_after <= info.not_before or info.not_after <= now:
        raise Unprocessable(
            f"The certificate is valid from {info.not_before.isoformat()} to {info.not_after.isoformat()}: "
            "it has expired (or its dates are inverted)",
            code="CERTIFICATE_EXPIRED",
            errors=[{"path": "pem", "message": f"notAfter {info.not_after.isoformat()} is past"}],
        )
    existing = await session.scalar(select(Certificate).where(Certificate.fingerprint == info.fingerprint))
    if existing is not None:
        raise Conflict(_filed_already(existing, code), code="CERTIFICATE_EXISTS")
    certificate = Certificate(
        enterprise_code=code,
        fingerprint=info.fingerprint,
        algorithm=info.algorithm,
        serial_number=info.serial_number[:64],
        subject=info.subject[:500],
        issuer=info.issuer[:500],
        not_before=info.not_before,
        not_after=info.not_after,
        der=info.der,
        public_key=info.public_key.key,
        label=data.label,
        created_at=now,
    )
    session.add(certificate)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same certificate filed at the same moment
        raise Conflict("This certificate is already filed", code="CERTIFICATE_EXISTS") from exc
    return certificate


def _filed_already(existing: Certificate, code: str) -> str:
    if existing.enterprise_code == code:
        return f"This certificate is already filed for {code} (id {existing.id})"
    # Said plainly: a certificate speaks for one enterprise only, and the caller holds its PEM anyway.
    return "This certificate is already filed for another enterprise; a certificate speaks for one enterprise"


async def list_certificates(session: AsyncSession, code: str) -> list[Certificate]:
    await get_enterprise(session, code)
    query = select(Certificate).where(Certificate.enterprise_code == code).order_by(Certificate.created_at)
    return list(await session.scalars(query))


async def get_certificate(session: AsyncSession, code: str, certificate_id: uuid.UUID) -> Certificate:
    certificate = await session.get(Certificate, certificate_id)
    if certificate is None or certificate.enterprise_code != code:
        raise NotFound(f"No certificate {certificate_id}", code="CERTIFICATE_NOT_FOUND")
    return certificate


async def revoke_certificate(session: AsyncSession, code: str, certificate_id: uuid.UUID) -> Certificate:
    certificate = await get_certificate(session, code, certificate_id)
    if certificate.revoked_at is None:
        certificate.revoked_at = utcnow()
        await session.flush()
    return certificate
