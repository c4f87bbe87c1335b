"""The audit trail: every administrative act, written by the route in the same transaction as the act.

``record_act`` adds one ``audit_entry`` to the request's session; it commits or rolls back with the act, so
the trail never shows an act that did not happen nor misses one that did. The table refuses UPDATE and
DELETE (migration 0006): entries are only ever added.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.models import AuditEntry, RawMessage
from app.observability import request_id_var
from app.schemas.audit import ActorKind, AuditEntryOut, AuditPage, RawMessageOut
from app.services.auth import Principal

Snapshot = BaseModel | Mapping[str, Any] | None


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    key_id: str | None = None


# `sw admin-key` at the server's console: no key yet, the operator is the machine's.
CLI_ACTOR = Actor("admin", "cli:sw admin-key")


def actor_of(principal: Principal) -> Actor:
    if principal.kind == "enterprise" and principal.enterprise_code is not None:
        return Actor("enterprise", principal.enterprise_code, principal.key_id)
    return Actor(principal.kind, principal.key_id, principal.key_id)


def _json(snapshot: Snapshot) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    if isinstance(snapshot, BaseModel):
        return snapshot.model_dump(mode="json")
    converted: dict[str, Any] = to_jsonable_python(dict(snapshot))
    return converted


async def record_act(
    session: AsyncSession,
    who: Principal | Actor,
    action: str,
    target_kind: str,
    target_id: object,
    *,
    before: Snapshot = None,
    after: Snapshot = None,
) -> AuditEntry:
    actor = actor_of(who) if isinstance(who, Principal) else who
    request_id = request_id_var.get()
    entry = AuditEntry(
        at=utcnow(),
        actor_kind=actor.kind,
        actor_id=actor.id[:64],
        actor_key_id=actor.key_id[:64] if actor.key_id else None,
        action=action,
        target_kind=target_kind,
        target_id=str(target_id)[:200],
        before=_json(before),
        after=_json(after),
        request_id=request_id[:200] if request_id else None,
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(f: AuditFilter) -> Select[AuditEntry]:
    query = select(AuditEntry)
    if f.actor is not None:
        query = query.where(AuditEntry.actor_id == f.actor)
    if f.action is not None:
        # `key.` finds every key act; a full name finds that one.
        if f.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(f.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == f.action)
    if f.target_kind is not None:
        query = query.where(AuditEntry.target_kind == f.target_kind)
    if f.target_id is not None:
        query = query.where(AuditEntry.target_id == f.target_id)
    if f.since is not None:
        query = query.where(AuditEntry.at >= f.since)
    if f.until is not None:
        query = query.where(AuditEntry.at < f.until)
    return query


def encode_cursor(entry: AuditEntry) -> str:
    return base64.urlsafe_b64encode(f"a{entry.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("a") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError("not an audit cursor")
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable("The cursor is not one this service issued", code="INVALID_CURSOR") from exc


def entry_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=entry.id,
        at=entry.at,
        actorKind=cast(ActorKind, entry.actor_kind),
        actorId=entry.actor_id,
        actorKeyId=entry.actor_key_id,
        action=entry.action,
        targetKind=entry.target_kind,
        targetId=entry.target_id,
        before=entry.before,
        after=entry.after,
        requestId=entry.request_id,
    )


async def list_entries(session: AsyncSession, f: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
    """Newest first, by id (the order of writing); the cursor is the last id seen."""
    query = _filtered(f)
    if cursor:
        query = query.where(AuditEntry.id < decode_cursor(cursor))
    rows = list(await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return AuditPage(
        items=[entry_out(e) for e in page], nextCursor=encode_cursor(page[-1]) if len(rows) > limit else None
    )


async def raw_message(session: AsyncSession, message_id: uuid.UUID) -> RawMessageOut:
    row = await session.get(RawMessage, message_id)
    if row is None:
        raise NotFound(f"No raw message {message_id}", code="RAW_MESSAGE_NOT_FOUND")
    body = bytes(row.body)
    encoding: Literal["utf-8", "base64"] = "utf-8"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:  # GB18030 XML, say: shown exactly, as base64
        text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    return RawMessageOut(
        id=row.id,
        sha256=row.sha256,
        contentType=row.content_type,
        sender=row.sender,
        receivedAt=row.received_at,
        size=len(body),
        body=text,
        encoding=encoding,
    )
