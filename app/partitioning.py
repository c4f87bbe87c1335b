"""Monthly range partitions of the append-only logs on PostgreSQL: which tables, how partitions are named, and
the DDL that creates one (docs/storage.md). Synchronous SQL text only, so the migration and the async services
share it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

# Table → the column it is partitioned on (its time of writing). Only append-only logs whose sole uniqueness
# is their surrogate id: a natural key that must be unique for ever cannot live in a partitioned table.
PARTITIONED: dict[str, str] = {
    "raw_message": "received_at",
    "submission": "accepted_at",
    "record_event": "at",
    "dispatch_attempt": "started_at",
    "webhook_attempt": "at",
}
# Their surrogate ids: the primary key is (id, partition column) once partitioned.
ID_COLUMNS: dict[str, str] = {
    "raw_message": "id",
    "submission": "seq",
    "record_event": "id",
    "dispatch_attempt": "id",
    "webhook_attempt": "id",
}
ADVISORY_LOCK = 0x5357_5041  # "SWPA": one partition maintainer at a time

_PARTITION_NAME = re.compile(r"^(?P<table>[a-z_]+)_(?:p(?P<year>\d{4})(?P<month>\d{2})|default)$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime | date) -> Month:
        return cls(moment.year, moment.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``; ValueError otherwise."""
        match = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if match is None or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(match[1]), int(match[2]))

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    def end(self) -> datetime:
        return self.plus(1).start()

    def suffix(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def partition_name(table: str, month: Month) -> str:
    return f"{table}_p{month.suffix()}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partition(name: str) -> bool:
    """A partition of one of our partitioned tables (not a table the models describe)."""
    match = _PARTITION_NAME.match(name)
    return match is not None and match["table"] in PARTITIONED


def month_of_partition(name: str) -> Month | None:
    match = _PARTITION_NAME.match(name)
    if match is None or match["year"] is None:
        return None
    return Month(int(match["year"]), int(match["month"]))


def months_between(first: Month, last: Month) -> list[Month]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = month.plus(1)
    return months


def create_default_sql(table: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {default_name(table)} PARTITION OF {table} DEFAULT"


def create_month_sql(table: str, month: Month) -> list[str]:
    """Create one month's partition even when the default partition already holds rows of that month:
    PostgreSQL refuses to attach a range the default has rows in, so the partition is made alone, the rows
    are moved into it, and it is attached — all in the caller's transaction."""
    name, column = partition_name(table, month), PARTITIONED[table]
    low, high = month.start().isoformat(), month.end().isoformat()
    bound = f"{column} >= '{low}' AND {column} < '{high}'"
    return [
        f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING STORAGE)",
        f"WITH moved AS (DELETE FROM {default_name(table)} WHERE {bound} RETURNING *) "  # noqa: S608 - our names
        f"INSERT INTO {name} SELECT * FROM moved",
        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')",
    ]


EXISTING_PARTITIONS_SQL = """
SELECT child.relname
FROM pg_inherits
JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class child ON child.oid = pg_inherits.inhrelid
WHERE parent.relname = :table AND parent.relnamespace = to_regnamespace(current_schema())
"""


def include_in_comparison(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: the partitions are made by `sw partitions ensure`, not by the models."""
    return not (type_ == "table" and name is not None and is_partition(name))
