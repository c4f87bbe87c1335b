"""submission_span: the accepted_at span of each natural key's submissions, so that the accept path's lookup of
a key's latest submission reads only the months that can hold it (docs/storage.md).

Revision ID: 0018_submission_span
Revises: 0017_purchase_retention
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0018_submission_span"
down_revision: str | None = "0017_purchase_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission_span",
        sa.Column("doc_type", sa.String(length=8), nullable=False),
        sa.Column("owner_code", sa.String(length=18), nullable=False),
        sa.Column("business_no", sa.String(length=60), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("doc_type", "owner_code", "business_no", name=op.f("pk_submission_span")),
    )
    # Every submission already stored, so that the bound holds from the first lookup on.
    op.execute(
        "INSERT INTO submission_span (doc_type, owner_code, business_no, first_at, last_at) "
        "SELECT doc_type, owner_code, business_no, min(accepted_at), max(accepted_at) FROM submission "
        "GROUP BY doc_type, owner_code, business_no"
    )


def downgrade() -> None:
    op.drop_table("submission_span")
