"""Statistics: an index on the hourly rollup by seller, metric and hour, so that a seller's figures over a
long period read that seller's cells alone (docs/statistics.md, Performance).

Revision ID: 0013_console_stats
Revises: 0011_partitioning
"""

from __future__ import annotations

from alembic import op

revision: str = "0013_console_stats"
down_revision: str | None = "0011_partitioning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stats_rollup") as batch_op:
        batch_op.create_index("ix_stats_rollup_seller_metric_hour", ["ebc_code", "metric", "hour"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stats_rollup") as batch_op:
        batch_op.drop_index("ix_stats_rollup_seller_metric_hour")
