"""The keys of the purchases `sw prune-purchases` exported and deleted, so that a late resend is refused.

Revision ID: 0017_purchase_retention
Revises: 0016_cancel_returns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017_purchase_retention"
down_revision: str | None = "0016_cancel_returns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pruned_purchase",
        sa.Column("ebp_code", sa.String(length=18), nullable=False),
        sa.Column("order_no", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("last_change_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("export", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("ebp_code", "order_no", name=op.f("pk_pruned_purchase")),
    )
    op.create_index("ix_pruned_purchase_order_no", "pruned_purchase", ["order_no"])


def downgrade() -> None:
    op.drop_index("ix_pruned_purchase_order_no", table_name="pruned_purchase")
    op.drop_table("pruned_purchase")
