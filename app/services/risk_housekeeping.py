"""Risk housekeeping, run every ``SW_RISK_HOUSEKEEPING_INTERVAL_S`` by each matcher process (and the one
embedded in ``sw serve``): prune the counters no window reads any more, and raise R8 warnings.

Safe with several processes: a run takes a PostgreSQL advisory lock with ``pg_try_advisory_xact_lock`` and a
process that does not get it skips its turn (another is doing the work); both halves are idempotent anyway —
a second prune deletes nothing, and R8's warning of an enterprise and period has a unique ``dedupe_key``
(``INSERT … ON CONFLICT DO NOTHING``), so however many processes raise it, it is raised once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.models import MatchRecord, RiskWarning
from app.rules.risk import PartyRates, enterprise_outliers
from app.services.risk import dialect_insert, prune_counters
from app.services.warnings import party_rates

log = logging.getLogger(__name__)
HOUSEKEEPING_LOCK = 7_300_001  # advisory lock key of a housekeeping run
R8_DAYS = 7
# The role of each column an enterprise is compared in: sellers with sellers, platforms with platforms.
R8_ROLES = {"seller": ("ebc_code", MatchRecord.ebc_code), "platform": ("ebp_code", MatchRecord.ebp_code)}


@dataclass(frozen=True)
class HousekeepingRun:
    ran: bool  # False: another process held the lock
    pruned: int = 0
    raised: int = 0


def r8_period(now: datetime) -> str:
    """The period an R8 warning is deduplicated in: the ISO week (UTC) of the run."""
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


async def raise_r8_warnings(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """One open warning per outlying enterprise and period; returns how many were raised now."""
    rows: list[dict[str, Any]] = []
    period = r8_period(now)
    for role, (field, column) in R8_ROLES.items():
        rates = await party_rates(session, column, now - timedelta(days=R8_DAYS))
        outliers = enterprise_outliers(
            {code: PartyRates(n, rejected) for code, (n, _mismatched, rejected) in rates.items()},
            settings.risk_r8_factor,
            settings.risk_r8_min_records,
        )
        for code, warning in sorted(outliers.items()):
            rows.append(
                {
                    "record_id": None,
                    "rule": warning.rule,
                    "ebp_code": None,
                    "ebc_code": None,
                    "logistics_code": None,
                    field: code,
                    "detail": {
                        "zh": warning.zh,
                        "en": warning.en,
                        "value": warning.value,
                        "threshold": warning.threshold,
                        "role": role,
                        "period": period,
                        "records": rates[code][0],
                    },
                    "status": "open",
                    "dedupe_key": f"R8:{role}:{code}:{period}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if not rows:
        return 0
    statement = dialect_insert(session)(RiskWarning).on_conflict_do_nothing(index_elements=["dedupe_key"])
    raised = 0
    for row in rows:  # one by one: rowcount says which were new
        result = await session.execute(statement.values(**row))
        raised += result.rowcount or 0  # type: ignore[attr-defined]
    return raised


async def _locked(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: one writer at a time already
    got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": HOUSEKEEPING_LOCK})
    return bool(got)


async def housekeeping(session: AsyncSession, settings: Settings, now: datetime) -> HousekeepingRun:
    if not await _locked(session):
        return HousekeepingRun(ran=False)
    pruned = await prune_counters(session, now, settings.risk_window_days)
    raised = await raise_r8_warnings(session, settings, now) if settings.risk_enabled else 0
    return HousekeepingRun(ran=True, pruned=pruned, raised=raised)


class RiskHousekeeper:
    """The periodic loop (first run one interval after start, so restarts do not all run at once)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> HousekeepingRun:
        return await run_in_transaction(
            self.sessionmaker, lambda session: housekeeping(session, self.settings, utcnow())
        )

    async def run(self) -> None:
        interval = self.settings.risk_housekeeping_interval_s
        if interval <= 0:
            return
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)
            if self._stopping.is_set():
                return
            try:
                done = await self.run_once()
            except Exception:  # a database outage must not end the loop: the next interval tries again
                log.exception("risk housekeeping failed")
                continue
            if done.ran:
                log.info("risk housekeeping: %d counter rows pruned, %d R8 warnings raised", done.pruned, done.raised)
