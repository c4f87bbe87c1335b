"""The audit trail: ``audit_entry``, append-only (a trigger refuses UPDATE, DELETE and TRUNCATE); API keys'
expiry and last use; enterprises' own rate limits.

Revision ID: 0007_audit_keys
Revises: 0006_subscriptions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_audit_keys"
down_revision: str | None = "0006_subscriptions"
branch_labels = None
depends_on = None

# The application connects as the owner of its tables, and an owner is not bound by REVOKE: only a trigger
# keeps the trail append-only for it.
PG_FUNCTION = """
CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entry is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
    "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()",
)
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_entry_no_{verb.lower()} BEFORE {verb} ON audit_entry "
    f"BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE")
)


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_key_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=200), nullable=False),
        sa.Column("before", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("after", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    with op.batch_alter_table("audit_entry") as batch_op:
        batch_op.create_index("ix_audit_entry_action", ["action", "id"], unique=False)
        batch_op.create_index("ix_audit_entry_actor", ["actor_id", "id"], unique=False)
        batch_op.create_index("ix_audit_entry_target", ["target_kind", "target_id", "id"], unique=False)
        batch_op.create_index("ix_audit_entry_at", ["at"], unique=False)
    with op.batch_alter_table("api_key") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("enterprise") as batch_op:
        batch_op.add_column(sa.Column("rate_limit_intake", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rate_limit_queries", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for trigger in PG_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    with op.batch_alter_table("enterprise") as batch_op:
        batch_op.drop_column("rate_limit_queries")
        batch_op.drop_column("rate_limit_intake")
    with op.batch_alter_table("api_key") as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
    op.drop_table("audit_entry")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_entry_append_only()")
