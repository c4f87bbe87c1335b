"""API keys and principals: who is calling, and what they may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

from pydantic import SecretStr
from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import utcnow
from app.errors import Conflict, Forbidden, NotFound, Unauthenticated, Unprocessable
from app.models import ApiKey, Enterprise
from app.rules.rate_limits import RouteClass

if TYPE_CHECKING:
    from app.services.filing_cache import FilingCache

PrincipalKind = Literal["admin", "official", "enterprise"]
KEY_PREFIX = "sw"
BOOTSTRAP_KEY_ID = "bootstrap"  # SW_ADMIN_TOKEN: no row of its own
# A key's last use is written at most this often (per process: app/services/filing_cache.py).
KEY_USE_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    key_id: str
    enterprise_code: str | None = None
    enterprise_status: str | None = None
    key_expires_at: datetime | None = None
    # The enterprise's own limits per route class (None: the settings' defaults).
    rate_limits: Mapping[RouteClass, int | None] = field(default_factory=dict)

    def expired(self, now: datetime) -> bool:
        return self.key_expires_at is not None and self.key_expires_at <= now

    @property
    def actor(self) -> str:
        """How the principal appears in audit events and timelines."""
        if self.kind == "enterprise":
            return f"enterprise:{self.enterprise_code}"
        return f"{self.kind}:{self.key_id}"

    @property
    def reads_everything(self) -> bool:
        return self.kind in ("admin", "official")

    def require_reader(self) -> None:
        """Admins and officials: the readers of everything (operations lists, the feed)."""
        if not self.reads_everything:
            raise Forbidden("Admins and officials only", code="ADMIN_REQUIRED")

    def require_admin(self) -> None:
        if self.kind != "admin":
            raise Forbidden("Only an admin may do this", code="ADMIN_REQUIRED")

    def require_admin_or_enterprise(self, code: str, *, creates: bool = True) -> None:
        """Admins, or the enterprise itself; others get 404 so that nothing leaks.

        A suspended enterprise may still list and revoke what it has (``creates=False``) — revoking a
        leaked key must never wait for reactivation — but may not create anything new.
        """
        if self.kind == "admin":
            return
        if self.kind == "enterprise" and self.enterprise_code == code:
            if creates:
                self.require_active()
            return
        if self.kind == "official":
            raise Forbidden("Officials have read-only access", code="READ_ONLY_PRINCIPAL")
        raise NotFound(f"No enterprise {code}", code="ENTERPRISE_NOT_FOUND")

    def require_reader_of(self, code: str) -> None:
        """Admins and officials read every enterprise's filing data; an enterprise its own."""
        if not self.reads_everything:
            self.require_admin_or_enterprise(code, creates=False)

    def require_active(self) -> None:
        if self.kind == "enterprise" and self.enterprise_status != "active":
            raise Forbidden("The enterprise is suspended", code="ENTERPRISE_SUSPENDED")


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is a sufficient one-way store (no slow KDF needed).
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


async def issue_key(
    session: AsyncSession,
    kind: PrincipalKind,
    enterprise_code: str | None = None,
    label: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and only its hash is stored."""
    if expires_at is not None and expires_at <= utcnow():
        raise Unprocessable(
            "expiresAt is not in the future",
            code="KEY_EXPIRY_PAST",
            errors=[{"path": "expiresAt", "message": "must be in the future"}],
        )
    prefix = secrets.token_hex(6)
    plain = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix,
        key_hash=hash_key(plain),
        principal_kind=kind,
        enterprise_code=enterprise_code,
        label=label,
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return row, plain


async def authenticate(
    conn: AsyncConnection, key: str | None, admin_token: SecretStr | None, cache: FilingCache | None = None
) -> Principal:
    """The principal of ``key``: one indexed lookup by its prefix, then a constant-time hash comparison.

    With ``cache``, a key seen in the last fraction of a second is not read again (app/services/filing_cache.py).
    """
    if not key:
        raise Unauthenticated("Send an API key in the X-API-Key header")
    if admin_token is not None and hmac.compare_digest(key.encode(), admin_token.get_secret_value().encode()):
        return Principal(kind="admin", key_id=BOOTSTRAP_KEY_ID)
    prefix = key_prefix(key)
    if prefix is not None:
        digest = hash_key(key)
        cached = cache.get(prefix, digest) if cache is not None else None
        if cached is not None:
            return cached
        row = (await conn.execute(_KEY_AND_ENTERPRISE.where(ApiKey.prefix == prefix))).first()
        if row is not None and row.revoked_at is None and hmac.compare_digest(row.key_hash, digest):
            principal = _principal(row)
            if principal.expired(utcnow()):
                raise Unauthenticated(
                    f"The API key expired at {row.expires_at:%Y-%m-%dT%H:%M:%SZ}; use its replacement or ask for "
                    "a new one",
                    code="KEY_EXPIRED",
                )
            if cache is not None:
                cache.put(prefix, digest, principal)
            return principal
    raise Unauthenticated("The API key is not valid or was revoked")


_KEY_AND_ENTERPRISE = select(
    ApiKey.id,
    ApiKey.key_hash,
    ApiKey.revoked_at,
    ApiKey.expires_at,
    ApiKey.principal_kind,
    ApiKey.enterprise_code,
    Enterprise.status,
    Enterprise.rate_limit_intake,
    Enterprise.rate_limit_queries,
).outerjoin(Enterprise, Enterprise.code == ApiKey.enterprise_code)


_KeyRow = Row[uuid.UUID, str, datetime | None, datetime | None, str, str | None, str, int | None, int | None]


def _principal(row: _KeyRow) -> Principal:
    return Principal(
        kind=cast(PrincipalKind, row.principal_kind),
        key_id=str(row.id),
        enterprise_code=row.enterprise_code,
        enterprise_status=row.status,
        key_expires_at=row.expires_at,
        rate_limits={"intake": row.rate_limit_intake, "queries": row.rate_limit_queries},
    )


async def principal_of_key_id(conn: AsyncConnection, key_id: uuid.UUID) -> Principal | None:
    """The principal of a stored key by its id, or None once the key is revoked (or gone): how a console
    session, which holds the key's id and never the key, is checked again on every request."""
    row = (await conn.execute(_KEY_AND_ENTERPRISE.where(ApiKey.id == key_id))).first()
    if row is None or row.revoked_at is not None:
        return None
    principal = _principal(row)
    return None if principal.expired(utcnow()) else principal


async def get_enterprise_key(session: AsyncSession, key_id: uuid.UUID, enterprise_code: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None or row.enterprise_code != enterprise_code:
        raise NotFound(f"No key {key_id}", code="KEY_NOT_FOUND")
    return row


async def revoke_key(session: AsyncSession, key_id: uuid.UUID, enterprise_code: str) -> ApiKey:
    row = await get_enterprise_key(session, key_id, enterprise_code)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def rotate_key(
    session: AsyncSession,
    key_id: uuid.UUID,
    enterprise_code: str,
    overlap: timedelta,
    label: str | None,
    expires_at: datetime | None,
) -> tuple[ApiKey, str, ApiKey]:
    """A new key for the enterprise, and the old one set to expire after ``overlap`` (never later than it
    would have anyway): both work until then, so the sender can switch over without a gap."""
    old = await get_enterprise_key(session, key_id, enterprise_code)
    now = utcnow()
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise Conflict(f"Key {key_id} is revoked or expired: issue a new key instead", code="KEY_NOT_ROTATABLE")
    new, plain = await issue_key(
        session, "enterprise", enterprise_code, label if label is not None else old.label, expires_at
    )
    ends = now + overlap
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    await session.flush()
    return new, plain, old


async def record_key_use(session: AsyncSession, key_id: uuid.UUID, now: datetime) -> None:
    """Set the key's last use to ``now`` unless another process did within the last minute."""
    recent = now - KEY_USE_INTERVAL
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < recent))
        .values(last_used_at=now)
    )


async def list_keys(session: AsyncSession, enterprise_code: str) -> list[ApiKey]:
    result = await session.scalars(
        select(ApiKey).where(ApiKey.enterprise_code == enterprise_code).order_by(ApiKey.created_at)
    )
    return list(result)
