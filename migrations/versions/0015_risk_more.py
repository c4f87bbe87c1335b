"""Enterprise-level warnings (R8): a warning without a record, and one per enterprise and period.

Revision ID: 0015_risk_more
Revises: 0014_notify_more
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_risk_more"
down_revision: str | None = "0014_notify_more"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_warning") as batch_op:
        batch_op.alter_column("record_id", existing_type=sa.Uuid(), nullable=True)
        for column in ("ebp_code", "ebc_code", "logistics_code"):
            batch_op.alter_column(column, existing_type=sa.String(length=18), nullable=True)
        # "R8:<enterprise>:<period>": a unique key, so concurrent raisers insert the period's warning once.
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_risk_warning_dedupe_key"), ["dedupe_key"])


def downgrade() -> None:
    op.execute("DELETE FROM risk_warning WHERE record_id IS NULL")
    with op.batch_alter_table("risk_warning") as batch_op:
        batch_op.drop_constraint(op.f("uq_risk_warning_dedupe_key"), type_="unique")
        batch_op.drop_column("dedupe_key")
        for column in ("ebp_code", "ebc_code", "logistics_code"):
            batch_op.alter_column(column, existing_type=sa.String(length=18), nullable=False)
        batch_op.alter_column("record_id", existing_type=sa.Uuid(), nullable=False)
