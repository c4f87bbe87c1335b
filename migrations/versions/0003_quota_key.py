"""Declarations keep the buyer's quota key (the ID number upper-cased), so the quota lookup is an index scan.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The quota query compared upper(buyer_id_number), which no index serves; now it compares the stored key.
    op.execute("UPDATE declaration SET buyer_id_number = upper(buyer_id_number)")


def downgrade() -> None:
    # The original spelling is not kept; upper-case keys are still correct for the previous code.
    pass
