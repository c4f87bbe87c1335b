"""Statistics (统计监测): the hourly rollups, and what the records carry for them.

Revision ID: 0009_stats_rollups
Revises: 0005_certificates
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_stats_rollups"
down_revision: str | None = "0005_certificates"
branch_labels = None
depends_on = None

DECIMAL = sa.Numeric(19, 5).with_variant(sa.String(48), "sqlite")  # app.db.ExactDecimal
RECORD_COLUMNS = (
    ("documents_first_at", sa.DateTime(timezone=True)),
    ("documents_last_at", sa.DateTime(timezone=True)),
    ("customs_accepted_at", sa.DateTime(timezone=True)),
    ("settled_at", sa.DateTime(timezone=True)),
    ("tax_total", DECIMAL),
    ("trade_mode", sa.String(length=8)),
    ("port_code", sa.String(length=8)),
)


def upgrade() -> None:
    op.create_table(
        "stats_rollup",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=24), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("ebp_code", sa.String(length=18), nullable=False),
        sa.Column("ebc_code", sa.String(length=18), nullable=False),
        sa.Column("trade_mode", sa.String(length=8), nullable=False),
        sa.Column("port_code", sa.String(length=8), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("amount_e5", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour", "metric", "code", "ebp_code", "ebc_code", "trade_mode", "port_code", name=op.f("pk_stats_rollup")
        ),
    )
    with op.batch_alter_table("stats_rollup") as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_rollup_metric_hour"), ["metric", "hour"], unique=False)
    with op.batch_alter_table("match_record") as batch_op:
        for name, type_ in RECORD_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("match_record") as batch_op:
        for name, _ in reversed(RECORD_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("stats_rollup") as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_rollup_metric_hour"))
    op.drop_table("stats_rollup")
