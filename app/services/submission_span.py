"""Keeping ``submission_span`` (app/models/submission.py) and bounding a key's submission lookup by it.

Every statement that appends submissions upserts their keys' spans in the same transaction, widening
[first_at, last_at] to take in the new ``accepted_at`` (LEAST / GREATEST, not "the newest": API processes' clocks
differ, so a later submission may carry an earlier time). Every submission of a key therefore lies within its
span, and a lookup bounded by it finds exactly what an unbounded one would — reading, on PostgreSQL, only the
months the span covers (one, for a key whose versions all came in one month; none for a key never seen). Rows
pruned away (`sw prune`) only leave a span wider than needed, never too narrow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.models import Submission, SubmissionSpan

Key = tuple[str, str, str]


def span_upsert(dialect: str, rows: Sequence[Mapping[str, Any]]) -> Any:
    """The upsert of the spans of ``rows`` (submission rows: doc_type, owner_code, business_no, accepted_at);
    one row per key, as an upsert may not touch a row twice."""
    spans: dict[Key, tuple[datetime, datetime]] = {}
    for row in rows:
        key = (row["doc_type"], row["owner_code"], row["business_no"])
        at: datetime = row["accepted_at"]
        first, last = spans.get(key, (at, at))
        spans[key] = (min(first, at), max(last, at))
    values = [
        {"doc_type": d, "owner_code": o, "business_no": b, "first_at": first, "last_at": last}
        for (d, o, b), (first, last) in spans.items()
    ]
    postgres = dialect == "postgresql"
    statement = (pg_insert if postgres else sqlite_insert)(SubmissionSpan).values(values)
    # SQLite's two-argument min() and max() are its LEAST and GREATEST.
    least, greatest = (func.least, func.greatest) if postgres else (func.min, func.max)
    return statement.on_conflict_do_update(
        index_elements=[SubmissionSpan.doc_type, SubmissionSpan.owner_code, SubmissionSpan.business_no],
        set_={
            "first_at": least(SubmissionSpan.first_at, statement.excluded.first_at),
            "last_at": greatest(SubmissionSpan.last_at, statement.excluded.last_at),
        },
    )


def _span_of_one(column: Any) -> Any:
    return (
        select(column)
        .where(
            SubmissionSpan.doc_type == bindparam("doc_type"),
            SubmissionSpan.owner_code == bindparam("owner_code"),
            SubmissionSpan.business_no == bindparam("business_no"),
        )
        .scalar_subquery()
    )


# For a lookup by the bound parameters doc_type, owner_code and business_no: no span, no row.
WITHIN_SPAN_OF_ONE: tuple[ColumnElement[bool], ...] = (
    Submission.accepted_at >= _span_of_one(SubmissionSpan.first_at),
    Submission.accepted_at <= _span_of_one(SubmissionSpan.last_at),
)

# For a join of submission and submission_span.
WITHIN_JOINED_SPAN: ColumnElement[bool] = and_(
    SubmissionSpan.doc_type == Submission.doc_type,
    SubmissionSpan.owner_code == Submission.owner_code,
    SubmissionSpan.business_no == Submission.business_no,
    Submission.accepted_at.between(SubmissionSpan.first_at, SubmissionSpan.last_at),
)
