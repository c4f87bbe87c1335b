"""The statistics rollups kept in the transactions that change the records, and rebuilt from the records.

A transaction that changes records takes a ``RollupTally``: it notes each record's contribution before the
change (``before``) and after it (``after``), adds processed documents (``add``), and ``write`` sends the
difference as one ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` per batch of distinct cells (to
the hourly table, and the same by day without the seller to the daily one), in key order (concurrent writers
take the cells' row locks in the same order and cannot deadlock). There is no read-modify-write: the
database adds. ``rebuild`` truncates and recomputes every cell from the records and
the submission log in one transaction; the contributions come from one pure function
(``app.rules.rollups.contribution``), so rebuilt and incrementally kept figures agree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Declaration, MatchRecord, RiskWarning, StatsRollup, StatsRollupDaily, Submission
from app.models.stats import StatsRollupColumns
from app.rules.rollups import (
    Amounts,
    CellKey,
    Cells,
    PurchaseFacts,
    add_cells,
    agency_states,
    contribution,
    daily,
    difference,
    discrepancy_codes,
    document_cells,
    risk_cells,
)
from app.services.rollups_sql import rebuild_in_sql
from app.services.rows import RecordRow

# Rows per upsert statement: under SQLite's limit of bound parameters whatever the batch.
UPSERT_CHUNK = 500
SESSION_KEY = "stats_rollup_tally"
KEY_COLUMNS = ("hour", "metric", "code", "ebp_code", "ebc_code", "trade_mode", "port_code")


# What ``purchase_facts`` reads: a rebuild selects these columns alone (no ORM objects for millions of rows).
FACT_COLUMNS = tuple(
    MatchRecord.__table__.c[name]
    for name in (
        "status",
        "created_at",
        "ebp_code",
        "ebc_code",
        "trade_mode",
        "port_code",
        "matched_at",
        "settled_at",
        "documents_first_at",
        "documents_last_at",
        "customs_accepted_at",
        "tax_total",
        "discrepancies",
        "rejection",
        "agencies",
    )
)


def purchase_facts(record: MatchRecord | RecordRow | Row[Any]) -> PurchaseFacts:
    """The facts of a record, or of a row of ``FACT_COLUMNS`` (the same names)."""
    rejection = record.rejection or {}
    return PurchaseFacts(
        status=record.status,
        created_at=record.created_at,
        ebp_code=record.ebp_code,
        ebc_code=record.ebc_code,
        trade_mode=record.trade_mode,
        port_code=record.port_code,
        matched_at=record.matched_at,
        settled_at=record.settled_at,
        documents_first_at=record.documents_first_at,
        documents_last_at=record.documents_last_at,
        customs_accepted_at=record.customs_accepted_at,
        tax_total=record.tax_total,
        discrepancy_codes=discrepancy_codes(record.discrepancies or []),
        rejection_code=str(rejection.get("cebReturnStatus") or rejection.get("code") or "") or None,
        agency_states=agency_states(record.agencies or {}),
    )


@dataclass
class RollupTally:
    """One transaction's changes to the rollups."""

    _before: dict[uuid.UUID, Cells] = field(default_factory=dict)
    _records: dict[uuid.UUID, MatchRecord | RecordRow] = field(default_factory=dict)
    _added: Cells = field(default_factory=dict)

    def before(self, record: MatchRecord | RecordRow) -> None:
        """Note a stored record's contribution before this transaction changes it (first note wins)."""
        if record.id not in self._before:
            self._before[record.id] = contribution(purchase_facts(record))
            self._records[record.id] = record

    def track_new(self, record: MatchRecord | RecordRow) -> None:
        """A record this transaction creates: it contributed nothing before."""
        if record.id not in self._before:
            self._before[record.id] = {}
            self._records[record.id] = record

    def add(self, cells: Cells) -> None:
        add_cells(self._added, cells)

    def changes(self) -> Cells:
        """Everything this transaction adds to the rollups, now (records read as they are at this moment)."""
        total: Cells = dict(self._added)
        for record_id, before in self._before.items():
            add_cells(total, difference(before, contribution(purchase_facts(self._records[record_id]))))
        return {key: amounts for key, amounts in total.items() if amounts}

    async def write(self, session: AsyncSession) -> None:
        """Add the changes to the rollups, once, at the end of the transaction's changes (the tally is spent)."""
        changes = self.changes()
        self._before.clear()
        self._records.clear()
        self._added.clear()
        await upsert_cells(session, changes)


def session_tally(session: AsyncSession) -> RollupTally:
    """The tally of the session's transaction, for code paths that change records one at a time (agency
    receipts); their caller writes it with ``write_session_tally`` before committing."""
    tally = session.info.get(SESSION_KEY)
    if tally is None:
        tally = session.info[SESSION_KEY] = RollupTally()
    assert isinstance(tally, RollupTally)
    return tally


async def write_session_tally(session: AsyncSession) -> None:
    tally = session.info.pop(SESSION_KEY, None)
    if isinstance(tally, RollupTally):
        await tally.write(session)


def _row(key: CellKey, amounts: Amounts) -> dict[str, Any]:
    return {
        "hour": key.hour,
        "metric": key.metric,
        "code": key.code,
        "ebp_code": key.ebp_code,
        "ebc_code": key.ebc_code,
        "trade_mode": key.trade_mode,
        "port_code": key.port_code,
        "n": amounts.n,
        "amount_e5": amounts.amount_e5,
    }


async def upsert_cells(session: AsyncSession, cells: Cells) -> None:
    """Add ``cells`` to the hourly rollup and their days to the daily one (hourly first, then daily, each in
    key order: every writer locks in the same order)."""
    if not cells:
        return
    for model, found in ((StatsRollup, cells), (StatsRollupDaily, daily(cells))):
        await _upsert(session, model, found)


async def _upsert(session: AsyncSession, model: type[StatsRollupColumns], cells: Cells) -> None:
    rows = [_row(key, cells[key]) for key in sorted(cells)]
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(rows), UPSERT_CHUNK):
        statement = make(model).values(rows[start : start + UPSERT_CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={"n": model.n + statement.excluded.n, "amount_e5": model.amount_e5 + statement.excluded.amount_e5},
        )
        await session.execute(statement)


def submission_cells(
    accepted_at: Any, doc_type: str, owner_code: str, outcome: str, result: dict[str, Any] | None
) -> Cells:
    """A processed submission's cells (the platform is known for orders: their owner is the platform)."""
    code = str(result.get("code") or "") if outcome == "rejected" and result else None
    return document_cells(accepted_at, doc_type, outcome, owner_code if doc_type == "order" else "", code)


async def recompute(session: AsyncSession) -> Cells:
    """Every cell, from the records and the processed submissions as they are."""
    cells: Cells = {}
    records = await session.stream(select(*FACT_COLUMNS).execution_options(yield_per=5000))
    async for record in records:
        add_cells(cells, contribution(purchase_facts(record)))
    documents = await session.stream(
        select(
            Submission.accepted_at, Submission.doc_type, Submission.owner_code, Submission.outcome, Submission.result
        )
        .where(Submission.state == "done")
        .execution_options(yield_per=5000)
    )
    async for accepted_at, doc_type, owner_code, outcome, result in documents:
        add_cells(cells, submission_cells(accepted_at, doc_type, owner_code, outcome or "", result))
    add_cells(cells, await recompute_risk(session))
    return cells


async def recompute_risk(session: AsyncSession) -> Cells:
    """The decisions (from the declarations) and warnings (from the queue) the declare stage counted."""
    rules: dict[uuid.UUID, list[str]] = {}
    # R8's warnings judge an enterprise (no record): the declare stage never counted them.
    for record_id, rule in await session.execute(
        select(RiskWarning.record_id, RiskWarning.rule)
        .where(RiskWarning.record_id.is_not(None))
        .order_by(RiskWarning.id)
    ):
        if record_id is not None:
            rules.setdefault(record_id, []).append(rule)
    cells: Cells = {}
    decisions = await session.stream(
        select(
            Declaration.record_id,
            Declaration.created_at,
            Declaration.risk,
            MatchRecord.ebp_code,
            MatchRecord.ebc_code,
            MatchRecord.trade_mode,
            MatchRecord.port_code,
        )
        .join(MatchRecord, MatchRecord.id == Declaration.record_id)
        .where(Declaration.risk.is_not(None))
        .execution_options(yield_per=5000)
    )
    async for record_id, at, risk, ebp, ebc, trade_mode, port in decisions:
        if not isinstance(risk, dict) or "decision" not in risk:
            continue
        parties = (ebp, ebc or "", trade_mode or "", port or "")
        add_cells(cells, risk_cells(at, parties, risk.get("levels") or {}, risk["decision"], rules.get(record_id, ())))
    return cells


async def rebuild(session: AsyncSession) -> int:
    """Replace every rollup cell by its value recomputed from the records (in the caller's transaction).
    Returns the number of cells."""
    if session.get_bind().dialect.name == "postgresql":
        # A writer that changed records before the lock has its upsert waited for; one after it waits at its
        # upsert, and adds its difference on top of the rebuilt figures (which do not see its changes).
        await session.execute(text("LOCK TABLE stats_rollup, stats_rollup_daily IN EXCLUSIVE MODE"))
    await session.execute(delete(StatsRollup))
    await session.execute(delete(StatsRollupDaily))
    return await rebuild_in_sql(session)


async def stored_cells(session: AsyncSession, model: type[StatsRollupColumns] = StatsRollup) -> Cells:
    """A rollup table as stored, without the cells that came back to zero."""
    cells: Cells = {}
    for row in await session.scalars(select(model)):
        amounts = Amounts(row.n, row.amount_e5)
        if amounts:
            key = CellKey(row.hour, row.metric, row.code, row.ebp_code, row.ebc_code, row.trade_mode, row.port_code)
            cells[key] = amounts
    return cells
