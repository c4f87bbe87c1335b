"""Monthly partitions of the append-only logs (raw messages, submissions, the feed, dispatch and webhook
attempts) on PostgreSQL, with a DEFAULT partition each; the two foreign keys into ``raw_message`` are dropped
on every backend (a foreign key into a partitioned table must name its partition key). docs/storage.md.

An existing PostgreSQL database is moved: each table is renamed aside, a partitioned twin is made with the same
columns, defaults, indexes and foreign keys, the months its rows span (and the next three) are created, the rows
copied, the sequence handed over, the old table dropped. The copy takes time in proportion to the data (run it
in a maintenance window); it is one transaction, so it either happens whole or not at all.

Revision ID: 0011_partitioning
Revises: 0009_risk_credit
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.partitioning import ID_COLUMNS, PARTITIONED, Month, create_default_sql, create_month_sql, months_between

revision: str = "0011_partitioning"
down_revision: str | None = "0009_risk_credit"
branch_labels = None
depends_on = None

MONTHS_AHEAD = 3
# (table, constraint, column): the foreign keys into raw_message, which cannot stay.
RAW_MESSAGE_FKS = (
    ("document", "fk_document_raw_message_id_raw_message", "raw_message_id"),
    ("submission", "fk_submission_raw_message_id_raw_message", "raw_message_id"),
)
READONLY_ROLE = "sw_readonly"


def _rows(sql: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    return list(op.get_bind().execute(sa.text(sql), params))


def _dependent_views(table: str) -> list[tuple[str, str]]:
    """Views reading ``table`` (the analytics views of 0008): dropped and made again around the swap."""
    rows = _rows(
        """SELECT DISTINCT view.relname, pg_get_viewdef(view.oid)
           FROM pg_depend
           JOIN pg_rewrite ON pg_rewrite.oid = pg_depend.objid
           JOIN pg_class view ON view.oid = pg_rewrite.ev_class
           WHERE pg_depend.refobjid = CAST(:table AS regclass) AND view.oid <> CAST(:table AS regclass)""",
        table=table,
    )
    return [(str(name), str(body)) for name, body in rows]


def _rebuild(table: str, partitioned: bool) -> None:
    """Swap ``table`` for a twin (partitioned or not) holding the same rows, indexes, keys and views."""
    column, id_column, old = PARTITIONED[table], ID_COLUMNS[table], f"{table}__old"
    indexes = _rows(
        """SELECT indexname, indexdef FROM pg_indexes
           WHERE schemaname = current_schema() AND tablename = :table AND indexname <> :pk""",
        table=table,
        pk=f"pk_{table}",
    )
    foreign_keys = _rows(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = CAST(:table AS regclass) AND contype = 'f' AND confrelid <> CAST('raw_message' AS regclass)""",
        table=table,
    )
    views = _dependent_views(table)
    for name, _ in views:
        op.execute(f"DROP VIEW {name}")
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{table} TO pk_{old}")
    for name, _ in indexes:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}__old")
    layout = f" PARTITION BY RANGE ({column})" if partitioned else ""
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE){layout}")
    key = f"{id_column}, {column}" if partitioned else id_column
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
    for _, definition in indexes:
        op.execute(str(definition))
    for name, definition in foreign_keys:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    if partitioned:
        bounds = _rows(f"SELECT min({column}), max({column}) FROM {old}")[0]  # noqa: S608 - our names
        now = Month.of(datetime.now(UTC))
        first = Month.of(bounds[0]) if bounds[0] is not None else now  # type: ignore[arg-type]
        last = max(Month.of(bounds[1]), now) if bounds[1] is not None else now  # type: ignore[arg-type]
        op.execute(create_default_sql(table))
        for month in months_between(min(first, now), last.plus(MONTHS_AHEAD)):
            for statement in create_month_sql(table, month):
                op.execute(statement)
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")  # noqa: S608 - our names
    sequence = _rows("SELECT pg_get_serial_sequence(:old, :column)", old=old, column=id_column)[0][0]
    if sequence is not None:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{id_column}")
    op.execute(f"DROP TABLE {old}")
    for name, body in views:
        op.execute(f"CREATE VIEW {name} AS {body}")
        grant = f"GRANT SELECT ON {name} TO {READONLY_ROLE}"
        role = f"SELECT 1 FROM pg_roles WHERE rolname = '{READONLY_ROLE}'"  # noqa: S608 - our constants
        op.execute(f"DO $$ BEGIN IF EXISTS ({role}) THEN {grant}; END IF; END $$")
    op.execute(f"ANALYZE {table}")


def _sqlite_views() -> list[tuple[str, str]]:
    """SQLite's batch mode copies a table and renames the copy, which breaks a view reading it: the views are
    dropped first and made again from their own text."""
    if op.get_bind().dialect.name != "sqlite":
        return []
    views = [(str(name), str(sql)) for name, sql in _rows("SELECT name, sql FROM sqlite_master WHERE type = 'view'")]
    for name, _ in views:
        op.execute(f"DROP VIEW {name}")
    return views


def upgrade() -> None:
    views = _sqlite_views()
    for table, name, _ in RAW_MESSAGE_FKS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(name, type_="foreignkey")
    for _, sql in views:
        op.execute(sql)
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: one heap per table; `sw prune` deletes by month instead (docs/storage.md)
    for table in PARTITIONED:
        _rebuild(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in PARTITIONED:
            _rebuild(table, partitioned=False)
    views = _sqlite_views()
    for table, name, column in RAW_MESSAGE_FKS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(name, "raw_message", [column], ["id"])
    for _, sql in views:
        op.execute(sql)
