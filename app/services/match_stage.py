"""The match stage: accepted submissions, in micro-batches, applied to documents and records set-based.

A round claims up to ``match_batch_size`` pending submissions in acceptance order (every sender together),
locks their order numbers in one statement, loads what they touch in a few set queries (``Workspace``),
applies each in order (``apply_submission``: idempotency, appType 1/2/3, linking, matching with app/rules),
declares the records that matched (the declare stage, in the same transaction), writes everything in
multi-row statements and stores each submission's business result — all in one transaction.

Several matchers on PostgreSQL each claim a disjoint share with ``FOR UPDATE SKIP LOCKED``. Submissions of
one order number must be applied in acceptance order, so a matcher leaves a submission for later when an
earlier one of the same order number is claimed by another matcher (``_in_turn``). Why SKIP LOCKED rather
than partitions by order-number hash: any number of matchers can come and go without a rebalancing step,
and one hot partition cannot hold up the others (docs/pipeline.md).

A submission that cannot be processed (a bug, a poison value) must not hold up its batch: after a batch
fails for anything but a database outage, each submission is tried alone, and one that fails alone goes to
the visible ``dead`` state with its reason (admin list and retry in app/routers/operations.py).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import is_outage, run_in_transaction, utcnow
from app.errors import Conflict, NotFound
from app.models import Base, Submission
from app.schemas.documents import OrderIn, key_dict, natural_key
from app.services.declaration import declare_matched
from app.services.intake import Accepted, DocType, ItemResult, Sender, apply_submission, settle_receipt
from app.services.rollups import submission_cells
from app.services.rows import DocumentRow
from app.services.workspace import PAYLOAD_MODELS, Workspace

log = logging.getLogger(__name__)
MATCHER_ACTOR = "system:matcher"


@dataclass(frozen=True)
class RoundResult:
    claimed: int
    processed: int
    dead: int = 0


# What the match stage reads of a claimed submission: plain rows, not ORM objects (a micro-batch of hundreds
# would spend more on the ORM's bookkeeping than on matching); the outcome is written by primary key in bulk.
CLAIMED = tuple(c for c in Submission.__table__.c if c.name not in {"outcome", "http_status", "result", "error"})
Claimed = Row[Any]


async def claim(session: AsyncSession, limit: int, seqs: Sequence[int] | None = None) -> list[Claimed]:
    """Pending submissions in acceptance order, locked for this transaction (another matcher skips them)."""
    query = select(*CLAIMED).where(Submission.state == "pending").order_by(Submission.seq).limit(limit)
    if seqs is not None:
        query = query.where(Submission.seq.in_(seqs))
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True)
    rows = list(await session.execute(query))
    if postgres and rows:
        rows = await _in_turn(session, rows)
    return rows


async def _in_turn(session: AsyncSession, rows: list[Claimed]) -> list[Claimed]:
    """Drop the submissions whose order number has an earlier pending submission outside this batch: another
    matcher holds it (or it committed after ours were claimed), and it must be applied first."""
    mine = [row.seq for row in rows]
    earliest = dict(
        (
            await session.execute(
                select(Submission.order_no, func.min(Submission.seq))
                .where(
                    Submission.state == "pending",
                    Submission.order_no.in_(sorted({row.order_no for row in rows})),
                    Submission.seq.not_in(mine),
                )
                .group_by(Submission.order_no)
            )
        ).all()
    )
    return [row for row in rows if row.order_no not in earliest or row.seq < earliest[row.order_no]]


async def process(session: AsyncSession, settings: Settings, rows: Sequence[Claimed]) -> None:
    """Apply ``rows`` (claimed, in acceptance order) and store each one's business result."""
    ws = Workspace(session, settings, MATCHER_ACTOR)
    parsed = [(row, PAYLOAD_MODELS[row.doc_type].model_validate(row.payload)) for row in rows]
    by_type: dict[str, list[tuple[str, str]]] = {}
    for row, document in parsed:
        by_type.setdefault(row.doc_type, []).append(natural_key(document))
    order_nos = {row.order_no for row in rows}
    for doc_type, keys in sorted(by_type.items()):
        await ws.load(doc_type, keys, order_nos)
    await ws.load_goods(document for _, document in parsed if isinstance(document, OrderIn))
    results: list[tuple[Claimed, ItemResult]] = []
    for row, document in parsed:
        ws.actor, ws.accepted_at = row.actor, row.accepted_at
        sender = Sender(_doc_type(row.doc_type), row.sender_code, row.raw_message_id)
        try:
            result = apply_submission(ws, sender, row.item_index, Accepted(document, row.content_sha256, row.payload))
        except (Conflict, NotFound) as error:
            result = ItemResult(row.item_index, error.status, error=error)
        results.append((row, result))
    ws.actor, ws.accepted_at = MATCHER_ACTOR, None
    await declare_matched(ws)
    now = utcnow()
    outcomes: list[tuple[Claimed, ItemResult, DocumentRow | None]] = []
    for row, result in results:
        result = settle_receipt(ws, result)
        doc = ws.document(row.doc_type, row.owner_code, row.business_no) if result.error is None else None
        outcomes.append((row, result, doc))
        ws.tally.add(
            submission_cells(row.accepted_at, row.doc_type, row.owner_code, _outcome(result), _problem(result))
        )
        ws.event(
            "document_receipt",
            record_id=result.receipt.recordId if result.receipt is not None else None,
            document_id=doc.id if doc is not None else None,
            detail=_receipt_event(row, result),
        )
    await ws.write()
    # The submissions last: the documents they point at are written by now.
    updates: list[dict[str, Any]] = []
    for row, result, doc in outcomes:
        done: dict[str, Any] = {"row_seq": row.seq, "state": "done", "processed_at": now, "http_status": result.status}
        if result.error is not None:
            done |= {"outcome": "rejected", "result": result.error.problem(), "document_id": None}
        else:
            assert result.receipt is not None
            assert doc is not None
            done |= {
                "outcome": _outcome(result),
                "result": result.receipt.model_dump(mode="json"),
                "document_id": doc.id,
            }
        updates.append(done)
    if updates:  # Core's executemany by primary key (the ORM's bulk update adds per-row bookkeeping)
        table = Base.metadata.tables[Submission.__tablename__]
        await session.execute(update(table).where(table.c.seq == bindparam("row_seq")), updates)


def _outcome(result: ItemResult) -> str:
    if result.error is not None:
        return "rejected"
    return "replayed" if result.receipt is not None and result.receipt.replayed else "stored"


def _problem(result: ItemResult) -> dict[str, Any] | None:
    return result.error.problem() if result.error is not None else None


def _receipt_event(row: Claimed, result: ItemResult) -> dict[str, Any]:
    """The business receipt as the feed carries it: 120 with the record's status, or 100 with the reason."""
    detail: dict[str, Any] = {
        "seq": row.seq,
        "documentType": row.doc_type,
        "key": key_dict(row.doc_type, row.owner_code, row.business_no),
        "guid": row.guid,
        "sender": row.sender_code,
        "httpStatus": result.status,
    }
    if result.error is not None:
        spec = result.error.extra.get("cebReturnStatus")
        return detail | {
            "returnStatus": "100",
            "code": result.error.code,
            "cebReturnStatus": spec,
            "returnInfo": result.error.detail,
        }
    assert result.receipt is not None
    return detail | {
        "returnStatus": "120",
        "returnInfo": result.receipt.returnInfo,
        "replayed": result.receipt.replayed,
        "recordStatus": result.receipt.recordStatus,
    }


def _doc_type(value: str) -> DocType:
    if value not in PAYLOAD_MODELS:
        raise ValueError(f"unknown document type {value!r}")
    return value  # type: ignore[return-value]


async def run_round(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> RoundResult:
    """Claim and process one micro-batch; on a failure that is not an outage, each submission alone."""
    claimed: list[int] = []

    async def batch(session: AsyncSession) -> int:
        rows = await claim(session, settings.match_batch_size)
        claimed[:] = [row.seq for row in rows]
        if rows:
            await process(session, settings, rows)
        return len(rows)

    try:
        count = await run_in_transaction(sessionmaker, batch, retries=settings.max_transaction_retries)
        return RoundResult(count, count)
    except Exception as exc:
        if is_outage(exc) or not claimed:
            raise
        log.warning("match batch of %d failed (%r); processing its submissions one by one", len(claimed), exc)
    processed = dead = 0
    for seq in claimed:
        if await _process_alone(sessionmaker, settings, seq):
            processed += 1
        else:
            dead += 1
    return RoundResult(len(claimed), processed, dead)


async def _process_alone(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, seq: int) -> bool:
    async def alone(session: AsyncSession) -> None:
        rows = await claim(session, 1, [seq])
        if rows:
            await process(session, settings, rows)

    try:
        await run_in_transaction(sessionmaker, alone, retries=settings.max_transaction_retries)
        return True
    except Exception as exc:
        if is_outage(exc):
            raise
        log.error("submission %d cannot be processed: %r", seq, exc)
        reason = _reason(exc)

    async def bury(session: AsyncSession) -> None:
        await session.execute(
            update(Submission)
            .where(Submission.seq == seq, Submission.state == "pending")
            .values(state="dead", error=reason, processed_at=utcnow(), attempts=Submission.attempts + 1)
        )

    await run_in_transaction(sessionmaker, bury)
    return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return f"the stored payload no longer validates: {exc.error_count()} problem(s): {exc}"[:2000]
    frames = traceback.format_exception_only(type(exc), exc)
    return "".join(frames).strip()[:2000]
