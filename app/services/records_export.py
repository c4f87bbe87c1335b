"""A record search as CSV, any size: keyset pages of the search (oldest change first), each read in its own
short transaction, so that an export of millions of records holds no transaction or lock open for long and
each page costs one index range read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.schemas.records import RecordSummary
from app.services.auth import Principal
from app.services.records import RecordFilter, list_records

EXPORT_COLUMNS = [
    "recordId",
    "ebpCode",
    "orderNo",
    "ebcCode",
    "buyerIdNumber",
    "status",
    "missing",
    "discrepancies",
    "rejectionCode",
    "createdAt",
    "updatedAt",
    "matchedAt",
]


def export_row(record: RecordSummary) -> list[Any]:
    rejection = record.rejection or {}
    return [
        str(record.id),
        record.ebpCode,
        record.orderNo,
        record.ebcCode,
        record.buyerIdNumber,
        record.status,
        " ".join(record.missing),
        " ".join(d.code for d in record.discrepancies),
        rejection.get("cebReturnStatus") or rejection.get("code"),
        record.createdAt.isoformat(),
        record.updatedAt.isoformat(),
        record.matchedAt.isoformat() if record.matchedAt else None,
    ]


async def export_pages(
    sessionmaker: async_sessionmaker[AsyncSession], principal: Principal, f: RecordFilter, page_size: int
) -> AsyncIterator[list[Sequence[Any]]]:
    """The rows of every record the search finds that ``principal`` may read (masked as the API masks them)."""
    cursor: str | None = None
    while True:
        async with sessionmaker() as session:
            page = await list_records(session, principal, f, page_size, cursor)
        yield [export_row(record) for record in page.items]
        if page.nextCursor is None:
            return
        cursor = page.nextCursor
