"""Certificates of an enterprise (备案证书): file a PEM, list, revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.deps import PrincipalDep, SessionDep
from app.models import Certificate
from app.schemas.certificates import CertificateCreate, CertificateList, CertificateOut
from app.schemas.problems import problems
from app.services import audit
from app.services import certificates as service

router = APIRouter(prefix="/api/v1/enterprises/{code}/certificates", tags=["Filing (备案): certificates"])


def _out(row: Certificate) -> CertificateOut:
    return CertificateOut(
        id=row.id,
        enterpriseCode=row.enterprise_code,
        algorithm="SM2" if row.algorithm == "SM2" else "RSA",
        serialNumber=row.serial_number,
        subject=row.subject,
        issuer=row.issuer,
        notBefore=row.not_before,
        notAfter=row.not_after,
        fingerprint=row.fingerprint,
        label=row.label,
        createdAt=row.created_at,
        revokedAt=row.revoked_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CertificateOut,
    summary="File a certificate the enterprise signs its CEB XML with (admin or the enterprise)",
    description="A PEM X.509 certificate with an SM2 or RSA (≥ 2048 bits) public key, not expired. A signed "
    "message is then taken only if the certificate in its `KeyInfo` is one of these, not revoked and valid at "
    "the records' `appTime` (docs/xml.md#signatures). A certificate is filed for one enterprise only.",
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    operation_id="file_certificate",
)
async def file_certificate(
    code: str, data: CertificateCreate, session: SessionDep, principal: PrincipalDep
) -> CertificateOut:
    principal.require_admin_or_enterprise(code)
    filed = _out(await service.file_certificate(session, code, data))
    await audit.record_act(session, principal, "certificate.filed", "certificate", filed.id, after=filed)
    return filed


@router.get(
    "",
    response_model=CertificateList,
    summary="List the enterprise's certificates, revoked ones included; admins, officials, the enterprise",
    responses=problems(401, 403, 404, 503),
    operation_id="list_certificates",
)
async def list_certificates(code: str, session: SessionDep, principal: PrincipalDep) -> CertificateList:
    principal.require_reader_of(code)
    return CertificateList(items=[_out(r) for r in await service.list_certificates(session, code)])


@router.delete(
    "/{certificate_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a certificate (admin or the enterprise); messages signed with it are refused from now on",
    responses=problems(401, 403, 404, 503),
    operation_id="revoke_certificate",
)
async def revoke_certificate(
    code: str, certificate_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    principal.require_admin_or_enterprise(code, creates=False)
    before = _out(await service.get_certificate(session, code, certificate_id))
    after = _out(await service.revoke_certificate(session, code, certificate_id))
    await audit.record_act(
        session, principal, "certificate.revoked", "certificate", certificate_id, before=before, after=after
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
