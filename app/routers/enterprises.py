"""Filing (一次备案): enterprises, API keys, officials and delegations (委托)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from app.deps import PrincipalDep, SessionDep, forget_keys_on_commit
from app.models import ApiKey, Delegation
from app.schemas.enterprises import (
    DelegationCreate,
    DelegationList,
    DelegationOut,
    EnterpriseCreate,
    EnterpriseList,
    EnterpriseOut,
    EnterprisePatch,
    KeyCreate,
    KeyIssued,
    KeyList,
    KeyOut,
    KeyRotate,
    KeyRotated,
    OfficialCreate,
)
from app.schemas.examples import ENTERPRISE_EXAMPLES
from app.schemas.problems import problems
from app.services import audit, auth
from app.services import enterprises as service

router = APIRouter(prefix="/api/v1", tags=["Filing (备案): enterprises, keys, delegations"])


def _issued(row: ApiKey, plain: str) -> KeyIssued:
    return KeyIssued(
        id=row.id,
        key=plain,
        kind=row.principal_kind,
        enterpriseCode=row.enterprise_code,
        label=row.label,
        createdAt=row.created_at,
        expiresAt=row.expires_at,
    )


def _key(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        prefix=row.prefix,
        label=row.label,
        createdAt=row.created_at,
        revokedAt=row.revoked_at,
        expiresAt=row.expires_at,
        lastUsedAt=row.last_used_at,
    )


def _key_audited(row: ApiKey) -> dict[str, object]:
    """A key as the audit trail keeps it: whose it is, never the secret or its hash (nor its last use, which
    is not an act)."""
    shown = _key(row).model_dump(mode="json", exclude={"lastUsedAt"})
    return shown | {"kind": row.principal_kind, "enterpriseCode": row.enterprise_code}


def _status_action(before: EnterpriseOut, after: EnterpriseOut) -> str:
    if before.status != after.status:
        return "enterprise.suspended" if after.status == "suspended" else "enterprise.reactivated"
    limits_before = (before.intakeRateLimit, before.queryRateLimit)
    if limits_before != (after.intakeRateLimit, after.queryRateLimit):
        return "enterprise.rate_limits_changed"
    return "enterprise.changed"


def _delegation(d: Delegation) -> DelegationOut:
    return DelegationOut(
        id=d.id,
        principalCode=d.principal_code,
        agentCode=d.agent_code,
        documentTypes=d.document_types,
        createdAt=d.created_at,
        revokedAt=d.revoked_at,
    )


@router.post(
    "/enterprises",
    status_code=status.HTTP_201_CREATED,
    response_model=EnterpriseOut,
    summary="File an enterprise (admin)",
    description="`code`: a 10-character customs code or an 18-character unified social credit code. "
    "Roles: platform (电商平台, ebp), seller (电商企业, ebc), payment, logistics, declarant.",
    responses=problems(400, 401, 403, 409, 413, 422, 503),
    operation_id="create_enterprise",
)
async def create_enterprise(
    data: Annotated[EnterpriseCreate, Body(openapi_examples=ENTERPRISE_EXAMPLES)],
    session: SessionDep,
    principal: PrincipalDep,
) -> EnterpriseOut:
    principal.require_admin()
    filed = EnterpriseOut.model_validate(await service.create_enterprise(session, data))
    await audit.record_act(session, principal, "enterprise.filed", "enterprise", filed.code, after=filed)
    return filed


@router.get(
    "/enterprises",
    response_model=EnterpriseList,
    summary="List filed enterprises (an enterprise sees itself)",
    responses=problems(401, 503),
    operation_id="list_enterprises",
)
async def list_enterprises(session: SessionDep, principal: PrincipalDep) -> EnterpriseList:
    rows = await service.list_enterprises(session, principal)
    return EnterpriseList(items=[EnterpriseOut.model_validate(r) for r in rows])


@router.get(
    "/enterprises/{code}",
    response_model=EnterpriseOut,
    summary="Read one enterprise",
    responses=problems(401, 404, 503),
    operation_id="get_enterprise",
)
async def get_enterprise(code: str, session: SessionDep, principal: PrincipalDep) -> EnterpriseOut:
    return EnterpriseOut.model_validate(await service.visible_enterprise(session, principal, code))


@router.patch(
    "/enterprises/{code}",
    response_model=EnterpriseOut,
    summary="Rename, change roles, suspend or reactivate, set the signature policy (admin)",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="patch_enterprise",
)
async def patch_enterprise(
    code: str, patch: EnterprisePatch, request: Request, session: SessionDep, principal: PrincipalDep
) -> EnterpriseOut:
    principal.require_admin()
    forget_keys_on_commit(request, session)  # a suspension stops the enterprise's keys at once
    before = EnterpriseOut.model_validate(await service.get_enterprise(session, code))
    after = EnterpriseOut.model_validate(await service.patch_enterprise(session, code, patch))
    await audit.record_act(
        session, principal, _status_action(before, after), "enterprise", code, before=before, after=after
    )
    return after


@router.post(
    "/enterprises/{code}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyIssued,
    summary="Issue an API key for the enterprise (admin or the enterprise); shown once",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="create_enterprise_key",
)
async def create_key(
    code: str,
    session: SessionDep,
    principal: PrincipalDep,
    data: Annotated[
        KeyCreate | None,
        Body(
            openapi_examples={
                "labelled": {"summary": "A key for one system", "value": {"label": "ERP production"}},
                "expiring": {
                    "summary": "A key that stops working at the end of 2027 (Beijing time)",
                    "value": {"label": "Contractor", "expiresAt": "2027-12-31T23:59:59+08:00"},
                },
            }
        ),
    ] = None,
) -> KeyIssued:
    principal.require_admin_or_enterprise(code)
    await service.get_enterprise(session, code)
    data = data or KeyCreate()
    row, plain = await auth.issue_key(session, "enterprise", code, data.label, data.expiresAt)
    await audit.record_act(session, principal, "key.issued", "api_key", row.id, after=_key_audited(row))
    return _issued(row, plain)


@router.post(
    "/enterprises/{code}/keys/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyRotated,
    summary="Rotate a key: a new key now, the old one expiring after an overlap (admin or the enterprise)",
    description="Both keys work during the overlap (`overlapSeconds`, default 24 h), so every system of the "
    "sender can switch to the new key without a gap; after it the old key is refused with `KEY_EXPIRED`. "
    "An old key that was to expire sooner keeps its earlier expiry. A revoked or expired key is not rotated "
    "(`409 KEY_NOT_ROTATABLE`): issue a new one.",
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    operation_id="rotate_enterprise_key",
)
async def rotate_key(
    code: str,
    key_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    data: Annotated[
        KeyRotate | None,
        Body(
            openapi_examples={
                "default": {"summary": "The old key works 24 h more", "value": {}},
                "one hour": {
                    "summary": "A one-hour overlap, a new label",
                    "value": {"overlapSeconds": 3600, "label": "ERP 2027"},
                },
            }
        ),
    ] = None,
) -> KeyRotated:
    principal.require_admin_or_enterprise(code)
    forget_keys_on_commit(request, session)  # the old key's new expiry holds here at once
    data = data or KeyRotate()
    before = _key_audited(await auth.get_enterprise_key(session, key_id, code))
    overlap = timedelta(seconds=data.overlapSeconds)
    new, plain, old = await auth.rotate_key(session, key_id, code, overlap, data.label, data.expiresAt)
    after = _key_audited(old) | {"replacedBy": _key_audited(new)}
    await audit.record_act(session, principal, "key.rotated", "api_key", key_id, before=before, after=after)
    return KeyRotated(issued=_issued(new, plain), replaced=_key(old))


@router.get(
    "/enterprises/{code}/keys",
    response_model=KeyList,
    summary="List the enterprise's keys (never the secrets); admins, officials, the enterprise",
    responses=problems(401, 403, 404, 503),
    operation_id="list_enterprise_keys",
)
async def list_keys(code: str, session: SessionDep, principal: PrincipalDep) -> KeyList:
    principal.require_reader_of(code)
    await service.get_enterprise(session, code)
    rows = await auth.list_keys(session, code)
    return KeyList(items=[_key(r) for r in rows])


@router.delete(
    "/enterprises/{code}/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key (admin or the enterprise); effective at once",
    responses=problems(401, 403, 404, 503),
    operation_id="revoke_enterprise_key",
)
async def revoke_key(
    code: str, key_id: uuid.UUID, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    principal.require_admin_or_enterprise(code, creates=False)
    forget_keys_on_commit(request, session)
    before = _key_audited(await auth.get_enterprise_key(session, key_id, code))
    row = await auth.revoke_key(session, key_id, code)
    await audit.record_act(session, principal, "key.revoked", "api_key", key_id, before=before, after=_key_audited(row))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/officials",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyIssued,
    summary="Issue an official's key (admin): reads every record, changes nothing",
    responses=problems(400, 401, 403, 413, 422, 503),
    operation_id="create_official",
)
async def create_official(data: OfficialCreate, session: SessionDep, principal: PrincipalDep) -> KeyIssued:
    principal.require_admin()
    row, plain = await auth.issue_key(session, "official", None, data.label)
    await audit.record_act(session, principal, "official.created", "api_key", row.id, after=_key_audited(row))
    return _issued(row, plain)


@router.post(
    "/enterprises/{code}/delegations",
    status_code=status.HTTP_201_CREATED,
    response_model=DelegationOut,
    summary="Let another filed enterprise transmit documents on this one's behalf (委托)",
    description="Creates the delegation, or replaces the document types of an existing one (and reactivates it). "
    "E.g. a platform lets its entrusted express operator send its orders and payments.",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="create_delegation",
)
async def create_delegation(
    code: str, data: DelegationCreate, session: SessionDep, principal: PrincipalDep
) -> DelegationOut:
    principal.require_admin_or_enterprise(code)
    existing = await service.find_delegation(session, code, data.agentCode)
    before = _delegation(existing) if existing is not None else None
    after = _delegation(await service.upsert_delegation(session, code, data))
    await audit.record_act(session, principal, "delegation.granted", "delegation", after.id, before=before, after=after)
    return after


@router.get(
    "/enterprises/{code}/delegations",
    response_model=DelegationList,
    summary="Delegations granted by the enterprise or to it",
    responses=problems(401, 403, 404, 503),
    operation_id="list_delegations",
)
async def list_delegations(code: str, session: SessionDep, principal: PrincipalDep) -> DelegationList:
    principal.require_reader_of(code)
    await service.get_enterprise(session, code)
    return DelegationList(items=[_delegation(d) for d in await service.list_delegations(session, code)])


@router.delete(
    "/enterprises/{code}/delegations/{delegation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a delegation (admin or the granting enterprise)",
    responses=problems(401, 403, 404, 503),
    operation_id="revoke_delegation",
)
async def revoke_delegation(
    code: str, delegation_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    principal.require_admin_or_enterprise(code, creates=False)
    before = _delegation(await service.get_delegation(session, code, delegation_id))
    after = _delegation(await service.revoke_delegation(session, code, delegation_id))
    await audit.record_act(
        session, principal, "delegation.revoked", "delegation", delegation_id, before=before, after=after
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
