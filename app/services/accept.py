"""Accept: the only work on the request path.

The sender's key (checked by the caller), the authority of every enterprise a document names and the
sender's delegation, idempotency, and one short transaction that appends the raw message and one
``submission`` row per document. The answer is the acceptance receipt (returnStatus ``2``, 电子口岸申报中);
the business result (``120`` or ``100`` with the reason) is the match stage's (app/services/match_stage.py).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.errors import Conflict, DomainError, Forbidden, Unprocessable
from app.models import Delegation, Enterprise, RawMessage, Submission
from app.schemas.documents import AnyDocument, key_dict, natural_key
from app.schemas.records import Receipt
from app.services import accept_pg
from app.services.auth import Principal
from app.services.filing_cache import FiledEnterprise, FilingCache
from app.services.intake import (
    DocType,
    IntakeItem,
    ItemResult,
    RawBody,
    content_hash,
    spec_error,
)

# Which enterprise codes a document names, the role each must have, and which one owns the document.
NAMED_CODES: dict[str, tuple[tuple[str, str], ...]] = {
    "order": (("ebpCode", "platform"), ("ebcCode", "seller"), ("payCode", "payment")),
    "payment": (("payCode", "payment"), ("ebpCode", "platform")),
    "waybill": (("logisticsCode", "logistics"), ("ebpCode", "platform")),
}
OWNER_FIELD = {"order": "ebpCode", "payment": "payCode", "waybill": "logisticsCode"}


def acceptance_info(guid: str) -> str:
    """The returnInfo of an acceptance (returnStatus 2: received and stored, the business result follows)."""
    return f"电子口岸申报中[{guid}]"


@dataclass(frozen=True)
class Previous:
    """The latest accepted submission of a natural key that was not refused."""

    seq: int
    content_sha256: str
    app_type: str
    app_status: str
    state: str
    accepted_at: datetime


Verdict = Literal["new", "replay", "conflict"]


def decide(before: Previous | None, digest: str, app_type: str) -> Verdict:
    """What a new submission of a key is, beside the key's latest standing one (``before``).

    The same content (a cancellation being content of its own) is a replay of the original acceptance; other
    content sent as new (appType 1) while the stored version is processed and declared (appStatus 2) is a
    conflict — changes come with appType 2; anything else is accepted. ``accept_pg.ACCEPT_ONE`` says the same in
    SQL for the one-statement path (tests/test_accept_pg.py checks that the two agree on every combination).
    """
    if before is None:
        return "new"
    if before.content_sha256 == digest and (before.app_type == "3") == (app_type == "3"):
        return "replay"
    if app_type == "1" and before.state == "done" and before.app_type != "3" and before.app_status == "2":
        return "conflict"
    return "new"


def conflict_error(doc_type: str) -> DomainError:
    return spec_error(
        Conflict,
        "DUPLICATE_DIFFERENT_CONTENT",
        doc_type,
        f"A {doc_type} with this key is already stored with other content; send changes with appType 2",
    )


def submission_row(
    principal: Principal,
    doc_type: str,
    document: AnyDocument,
    index: int,
    digest: str,
    raw_id: uuid.UUID,
    now: datetime,
) -> dict[str, Any]:
    owner, number = natural_key(document)
    return {
        "doc_type": doc_type,
        "owner_code": owner,
        "business_no": number,
        "order_no": document.orderNo,
        "app_type": document.appType,
        "app_status": document.appStatus,
        "guid": document.guid or "",
        "content_sha256": digest,
        "payload": document.model_dump(mode="json", exclude_none=True),
        "sender_code": principal.enterprise_code,
        "actor": principal.actor,
        "raw_message_id": raw_id,
        "item_index": index,
        "accepted_at": now,
        "state": "pending",
        "attempts": 0,
    }


def raw_message_row(principal: Principal, raw: RawBody, raw_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    return {
        "id": raw_id,
        "sha256": hashlib.sha256(raw.body).hexdigest(),
        "content_type": raw.content_type[:100],
        "body": raw.body,
        "sender": principal.actor,
        "received_at": now,
    }


@dataclass
class Parties:
    enterprises: dict[str, FiledEnterprise] = field(default_factory=dict)
    delegated_by: set[str] = field(default_factory=set)


def check_sender(principal: Principal) -> None:
    if principal.kind != "enterprise" or principal.enterprise_code is None:
        raise Forbidden("Documents are transmitted with an enterprise's key", code="ENTERPRISE_KEY_REQUIRED")
    principal.require_active()


def acceptance_receipt(
    doc_type: str, document: AnyDocument, seq: int, accepted_at: datetime, *, replayed: bool
) -> Receipt:
    owner, number = natural_key(document)
    guid = document.guid or ""
    return Receipt(
        returnStatus="2",
        returnInfo=acceptance_info(guid),
        documentType=doc_type,
        key=key_dict(doc_type, owner, number),
        guid=guid,
        replayed=replayed,
        submissionSeq=seq,
        acceptedAt=accepted_at,
    )


async def accept_documents(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    principal: Principal,
    doc_type: DocType,
    items: Sequence[IntakeItem],
    raw: RawBody,
    cache: FilingCache | None = None,
    engine: AsyncEngine | None = None,
) -> list[ItemResult]:
    """Append the request's valid documents; a result per item, in item order (202 accepted, 200 the
    original acceptance of the same content again, or the item's problem)."""
    check_sender(principal)
    valid = [item for item in items if item.document is not None]
    results = [ItemResult(item.index, item.error.status, error=item.error) for item in items if item.error]
    if len(valid) == 1 and engine is not None and engine.dialect.name == "postgresql" and cache is not None:
        result = await _accept_one_pg(engine, principal, doc_type, valid[0], raw, cache)
        if result is not None:
            return sorted([*results, result], key=lambda r: r.index)
    if valid:

        async def work(session: AsyncSession) -> list[ItemResult]:
            return await _append(session, principal, doc_type, valid, raw, cache)

        results += await run_in_transaction(
            sessionmaker, work, retries=settings.max_transaction_retries, idempotent=True
        )
    return sorted(results, key=lambda r: r.index)


async def _accept_one_pg(
    engine: AsyncEngine,
    principal: Principal,
    doc_type: DocType,
    item: IntakeItem,
    raw: RawBody,
    cache: FilingCache,
) -> ItemResult | None:
    """One document in one statement (app/services/accept_pg.py), when the filing cache knows every enterprise
    it names and the sender owns it; None sends it the general way (which reads the filing and delegations)."""
    document = item.document
    assert document is not None
    named = {getattr(document, name) for name, _ in NAMED_CODES[doc_type] if getattr(document, name, None)}
    enterprises = cache.enterprises(named)
    if len(enterprises) != len(named) or getattr(document, OWNER_FIELD[doc_type]) != principal.enterprise_code:
        return None
    error = _check_parties(Parties(enterprises), principal, doc_type, document)
    if error is not None:
        return ItemResult(item.index, error.status, error=error)
    digest = content_hash(document)
    now = utcnow()
    raw_id = uuid.uuid4()
    row = submission_row(principal, doc_type, document, item.index, digest, raw_id, now)
    outcome = await accept_pg.accept_one(engine, row, raw_message_row(principal, raw, raw_id, now))
    if outcome.verdict == "conflict":
        return ItemResult(item.index, 409, error=conflict_error(doc_type))
    assert outcome.seq is not None
    replayed = outcome.verdict == "replay"
    accepted_at = outcome.accepted_at if replayed and outcome.accepted_at is not None else now
    receipt = acceptance_receipt(doc_type, document, outcome.seq, accepted_at, replayed=replayed)
    return ItemResult(item.index, 200 if replayed else 202, receipt=receipt, seq=outcome.seq)


async def _append(
    session: AsyncSession,
    principal: Principal,
    doc_type: DocType,
    items: Sequence[IntakeItem],
    raw: RawBody,
    cache: FilingCache | None,
) -> list[ItemResult]:
    documents = [item.document for item in items if item.document is not None]
    parties = await _load_parties(session, principal, doc_type, documents, cache)
    previous = await _latest(session, doc_type, [natural_key(d) for d in documents])
    now = utcnow()
    results: list[ItemResult] = []
    rows: list[dict[str, object]] = []
    pending: list[tuple[int, AnyDocument]] = []
    first_of: dict[tuple[str, str], tuple[int, str, str]] = {}
    repeats: list[tuple[ItemResult, AnyDocument, int]] = []
    raw_id = uuid.uuid4()
    for item in items:
        document = item.document
        assert document is not None
        error = _check_parties(parties, principal, doc_type, document)
        if error is not None:
            results.append(ItemResult(item.index, error.status, error=error))
            continue
        key = natural_key(document)
        digest = content_hash(document)
        first = first_of.get(key)
        if first is not None and first[1] == digest and (first[2] == "3") == (document.appType == "3"):
            # The same document twice in one request: the second is the first's acceptance.
            repeats.append((ItemResult(item.index, 200), document, first[0]))
            continue
        before = previous.get(key)
        verdict = decide(before, digest, document.appType)
        if verdict == "replay":
            assert before is not None
            receipt = acceptance_receipt(doc_type, document, before.seq, before.accepted_at, replayed=True)
            results.append(ItemResult(item.index, 200, receipt=receipt, seq=before.seq))
            continue
        if verdict == "conflict":
            results.append(ItemResult(item.index, 409, error=conflict_error(doc_type)))
            continue
        first_of.setdefault(key, (item.index, digest, document.appType))
        rows.append(submission_row(principal, doc_type, document, item.index, digest, raw_id, now))
        pending.append((item.index, document))
    if not rows:
        return results
    seqs = await _insert(session, raw_message_row(principal, raw, raw_id, now), rows)
    seq_of = dict(zip((index for index, _ in pending), seqs, strict=True))
    for index, document in pending:
        receipt = acceptance_receipt(doc_type, document, seq_of[index], now, replayed=False)
        results.append(ItemResult(index, 202, receipt=receipt, seq=seq_of[index]))
    for result, document, first_index in repeats:
        result.seq = seq_of[first_index]
        result.receipt = acceptance_receipt(doc_type, document, result.seq, now, replayed=True)
        results.append(result)
    return results


async def _insert(session: AsyncSession, raw_row: dict[str, object], rows: list[dict[str, object]]) -> list[int]:
    """The raw message and the submissions; their seqs in the order of ``rows``. A single document on
    PostgreSQL takes one statement (the raw message in a data-modifying CTE): a round trip fewer on the
    commonest request. A batch takes two: the round trip is small beside its hundred rows, and the driver's
    multi-row insert costs less to build than one statement of a hundred VALUES rows."""
    if session.get_bind().dialect.name != "postgresql" or len(rows) != 1:
        await session.execute(insert(RawMessage), [raw_row])
        returning = insert(Submission).returning(Submission.seq, sort_by_parameter_order=True)
        return list(await session.scalars(returning, rows))
    raw_cte = insert(RawMessage).values(raw_row).cte("raw")
    statement = insert(Submission).values(rows).returning(Submission.seq).add_cte(raw_cte)
    return list(await session.scalars(statement))


_LATEST_COLUMNS = (
    Submission.owner_code,
    Submission.business_no,
    Submission.seq,
    Submission.content_sha256,
    Submission.app_type,
    Submission.app_status,
    Submission.state,
    Submission.accepted_at,
)
# Not refused by the match stage, and not dead: what a new submission of the key is compared with.
_STANDING = (Submission.state != "dead", (Submission.outcome.is_(None)) | (Submission.outcome != "rejected"))
# The common case, one document: built once (building a statement costs more than running it on this path).
_LATEST_OF_ONE = (
    select(*_LATEST_COLUMNS)
    .where(
        Submission.doc_type == bindparam("doc_type"),
        Submission.owner_code == bindparam("owner_code"),
        Submission.business_no == bindparam("business_no"),
        *_STANDING,
    )
    .order_by(Submission.seq.desc())
    .limit(1)
)


async def _latest(
    session: AsyncSession, doc_type: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Previous]:
    """The latest submission of each key that was not refused and did not fail (one query)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if len(wanted) == 1:
        [(owner, number)] = wanted
        params = {"doc_type": doc_type, "owner_code": owner, "business_no": number}
        rows = await session.execute(_LATEST_OF_ONE, params)
    else:
        rank = (
            func.row_number()
            .over(partition_by=(Submission.owner_code, Submission.business_no), order_by=Submission.seq.desc())
            .label("rank")
        )
        ranked = (
            select(*_LATEST_COLUMNS, rank)
            .where(
                Submission.doc_type == doc_type,
                tuple_(Submission.owner_code, Submission.business_no).in_(wanted),
                *_STANDING,
            )
            .subquery()
        )
        rows = await session.execute(select(ranked).where(ranked.c.rank == 1))
    return {
        (row.owner_code, row.business_no): Previous(
            row.seq, row.content_sha256, row.app_type, row.app_status, row.state, row.accepted_at
        )
        for row in rows
    }


async def _load_parties(
    session: AsyncSession,
    principal: Principal,
    doc_type: str,
    documents: Sequence[AnyDocument],
    cache: FilingCache | None,
) -> Parties:
    parties = Parties()
    codes = {getattr(doc, name) for doc in documents for name, _ in NAMED_CODES[doc_type] if getattr(doc, name, None)}
    parties.enterprises = cache.enterprises(codes) if cache is not None else {}
    missing = codes - parties.enterprises.keys()
    if missing:
        rows = await session.execute(
            select(Enterprise.code, Enterprise.roles, Enterprise.status).where(Enterprise.code.in_(missing))
        )
        found = [FiledEnterprise(code, frozenset(roles), status) for code, roles, status in rows]
        parties.enterprises |= {e.code: e for e in found}
        if cache is not None:
            cache.put_enterprises(found)
    owners = {getattr(doc, OWNER_FIELD[doc_type]) for doc in documents}
    if owners <= {principal.enterprise_code}:
        return parties  # the caller sends only its own documents: no delegation is needed
    delegations = await session.scalars(
        select(Delegation).where(Delegation.agent_code == principal.enterprise_code, Delegation.revoked_at.is_(None))
    )
    parties.delegated_by = {d.principal_code for d in delegations if doc_type in d.document_types}
    return parties


def _check_parties(parties: Parties, principal: Principal, doc_type: str, doc: AnyDocument) -> DomainError | None:
    """Every named enterprise is filed and has its role; the caller owns the document or is delegated."""
    not_filed, wrong_role = [], []
    for name, role in NAMED_CODES[doc_type]:
        code = getattr(doc, name, None)
        if code is None:
            continue
        enterprise = parties.enterprises.get(code)
        if enterprise is None:
            not_filed.append({"path": name, "code": code, "message": f"enterprise {code} is not filed"})
        elif role not in enterprise.roles:
            wrong_role.append({"path": name, "code": code, "message": f"enterprise {code} is not filed as {role}"})
    if not_filed:
        return Unprocessable(
            "The document names an enterprise that is not filed", code="ENTERPRISE_NOT_FILED", errors=not_filed
        )
    if wrong_role:
        return Unprocessable(
            "An enterprise lacks the filed role the document needs", code="ENTERPRISE_ROLE_MISSING", errors=wrong_role
        )
    owner = getattr(doc, OWNER_FIELD[doc_type])
    if owner != principal.enterprise_code and owner not in parties.delegated_by:
        return Forbidden(
            f"Enterprise {principal.enterprise_code} may not transmit {doc_type}s of {owner}",
            code="NOT_AUTHORISED_FOR_ENTERPRISE",
        )
    if parties.enterprises[owner].status != "active":
        return Forbidden(f"Enterprise {owner} is suspended", code="ENTERPRISE_SUSPENDED")
    return None
