"""Filing: enterprises, keys and delegations. Services flush; the request's unit of work commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.models import Delegation, Enterprise
from app.rules.signatures import DEFAULT_POLICY
from app.schemas.enterprises import DelegationCreate, EnterpriseCreate, EnterprisePatch
from app.services.auth import Principal


async def create_enterprise(session: AsyncSession, data: EnterpriseCreate) -> Enterprise:
    if await session.get(Enterprise, data.code) is not None:
        raise Conflict(f"Enterprise {data.code} is already filed", code="ENTERPRISE_EXISTS")
    now = utcnow()
    enterprise = Enterprise(
        code=data.code,
        name=data.name,
        roles=list(data.roles),
        status="active",
        signature_policy=DEFAULT_POLICY,
        created_at=now,
        updated_at=now,
    )
    session.add(enterprise)
    await _flush_or_conflict(session, f"Enterprise {data.code} is already filed", "ENTERPRISE_EXISTS")
    return enterprise


async def _flush_or_conflict(session: AsyncSession, detail: str, code: str) -> None:
    """A concurrent request that wrote the same key first makes this one a 409, not a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(detail, code=code) from exc


async def get_enterprise(session: AsyncSession, code: str) -> Enterprise:
    enterprise = await session.get(Enterprise, code)
    if enterprise is None:
        raise NotFound(f"No enterprise {code}", code="ENTERPRISE_NOT_FOUND")
    return enterprise


async def visible_enterprise(session: AsyncSession, principal: Principal, code: str) -> Enterprise:
    """Admins and officials see every enterprise; an enterprise sees itself (others are 404)."""
    if not principal.reads_everything and principal.enterprise_code != code:
        raise NotFound(f"No enterprise {code}", code="ENTERPRISE_NOT_FOUND")
    return await get_enterprise(session, code)


async def list_enterprises(session: AsyncSession, principal: Principal) -> list[Enterprise]:
    query = select(Enterprise).order_by(Enterprise.code)
    if not principal.reads_everything:
        query = query.where(Enterprise.code == principal.enterprise_code)
    return list(await session.scalars(query))


async def patch_enterprise(session: AsyncSession, code: str, patch: EnterprisePatch) -> Enterprise:
    enterprise = await get_enterprise(session, code)
    if patch.name is not None:
        enterprise.name = patch.name
    if patch.roles is not None:
        enterprise.roles = list(patch.roles)
    if patch.status is not None:
        enterprise.status = patch.status
    if patch.signaturePolicy is not None:
        enterprise.signature_policy = patch.signaturePolicy
    # Here null means something (back to the default), so "given" is read from the fields set.
    if "intakeRateLimit" in patch.model_fields_set:
        enterprise.rate_limit_intake = patch.intakeRateLimit
    if "queryRateLimit" in patch.model_fields_set:
        enterprise.rate_limit_queries = patch.queryRateLimit
    enterprise.updated_at = utcnow()
    await session.flush()
    return enterprise


async def upsert_delegation(session: AsyncSession, principal_code: str, data: DelegationCreate) -> Delegation:
    await get_enterprise(session, principal_code)
    if data.agentCode == principal_code:
        raise Unprocessable("An enterprise cannot delegate to itself", code="DELEGATION_TO_SELF")
    if await session.get(Enterprise, data.agentCode) is None:
        raise Unprocessable(
            f"Agent {data.agentCode} is not filed",
            code="ENTERPRISE_NOT_FILED",
            errors=[{"path": "agentCode", "code": data.agentCode, "message": "not filed"}],
        )
    delegation = await find_delegation(session, principal_code, data.agentCode)
    now = utcnow()
    types = sorted(set(data.documentTypes))
    if delegation is None:
        delegation = Delegation(
            principal_code=principal_code,
            agent_code=data.agentCode,
            document_types=types,
            created_at=now,
            updated_at=now,
        )
        session.add(delegation)
        await _flush_or_conflict(
            session, "The same delegation was being created at the same moment; send it again", "DELEGATION_CONFLICT"
        )
    else:
        delegation.document_types, delegation.revoked_at, delegation.updated_at = types, None, now
    await session.flush()
    return delegation


async def find_delegation(session: AsyncSession, principal_code: str, agent_code: str) -> Delegation | None:
    query = select(Delegation).where(Delegation.principal_code == principal_code, Delegation.agent_code == agent_code)
    return await session.scalar(query)


async def list_delegations(session: AsyncSession, code: str) -> list[Delegation]:
    """Delegations the enterprise granted, and those granted to it as agent."""
    query = (
        select(Delegation)
        .where((Delegation.principal_code == code) | (Delegation.agent_code == code))
        .order_by(Delegation.created_at)
    )
    return list(await session.scalars(query))


async def get_delegation(session: AsyncSession, principal_code: str, delegation_id: uuid.UUID) -> Delegation:
    delegation = await session.get(Delegation, delegation_id)
    if delegation is None or delegation.principal_code != principal_code:
        raise NotFound(f"No delegation {delegation_id}", code="DELEGATION_NOT_FOUND")
    return delegation


async def revoke_delegation(session: AsyncSession, principal_code: str, delegation_id: uuid.UUID) -> Delegation:
    delegation = await get_delegation(session, principal_code, delegation_id)
    if delegation.revoked_at is None:
        delegation.revoked_at = utcnow()
    return delegation
