"""Cancel (CEB623) and return (CEB625) requests of a declared inventory; the quota an approved return gives back.

Revision ID: 0016_cancel_returns
Revises: 0015_risk_more
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_cancel_returns"
down_revision: str | None = "0015_risk_more"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _decimal() -> sa.types.TypeEngine[object]:
    return sa.Numeric(precision=19, scale=5).with_variant(sa.String(48), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("declaration") as batch_op:
        batch_op.add_column(sa.Column("returned_value", _decimal(), server_default="0", nullable=False))
    op.create_table(
        "inventory_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("guid", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fields", _JSON, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sender_code", sa.String(length=18), nullable=False),
        sa.Column("returned_value", _decimal(), nullable=True),
        sa.Column("goods_back_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipts", _JSON, nullable=False),
        sa.Column("delivery", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["match_record.id"], name=op.f("fk_inventory_request_record_id_match_record")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_request")),
    )
    op.create_index("ix_inventory_request_record", "inventory_request", ["record_id", "created_at"])
    op.create_index("ix_inventory_request_due", "inventory_request", ["delivery", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_inventory_request_due", table_name="inventory_request")
    op.drop_index("ix_inventory_request_record", table_name="inventory_request")
    op.drop_table("inventory_request")
    with op.batch_alter_table("declaration") as batch_op:
        batch_op.drop_column("returned_value")
