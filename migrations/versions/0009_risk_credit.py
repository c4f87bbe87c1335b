"""Credit levels and their history, supervision profiles, risk counters, warnings, the declaration's decision.

Revision ID: 0009_risk_credit
Revises: 0008_stats_rollups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_risk_credit"
down_revision: str | None = "0008_stats_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enterprise") as batch_op:
        batch_op.add_column(sa.Column("credit_level", sa.String(length=24), server_default="regular", nullable=False))
    with op.batch_alter_table("declaration") as batch_op:
        batch_op.add_column(sa.Column("risk", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True))
    op.create_table(
        "credit_assessment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_code", sa.String(length=18), nullable=False),
        sa.Column("level", sa.String(length=24), nullable=False),
        sa.Column("previous_level", sa.String(length=24), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_code"], ["enterprise.code"], name=op.f("fk_credit_assessment_enterprise_code_enterprise")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_assessment")),
    )
    op.create_index("ix_credit_assessment_enterprise", "credit_assessment", ["enterprise_code", "created_at"])
    op.create_table(
        "supervision_profile",
        sa.Column("level", sa.String(length=24), nullable=False),
        sa.Column(
            "inspection_rate", sa.Numeric(precision=7, scale=6).with_variant(sa.String(48), "sqlite"), nullable=False
        ),
        sa.Column("block", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("level", name=op.f("pk_supervision_profile")),
    )
    op.create_table(
        "risk_link",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("other", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", "bucket", "other", name=op.f("pk_risk_link")),
    )
    op.create_table(
        "risk_count",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", "bucket", name=op.f("pk_risk_count")),
    )
    op.create_table(
        "risk_warning",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=8), nullable=False),
        sa.Column("ebp_code", sa.String(length=18), nullable=False),
        sa.Column("ebc_code", sa.String(length=18), nullable=False),
        sa.Column("logistics_code", sa.String(length=18), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"], ["match_record.id"], name=op.f("fk_risk_warning_record_id_match_record")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_warning")),
    )
    op.create_table(
        "complaint",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("enterprise_code", sa.String(length=18), nullable=True),
        sa.Column("report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("record_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("handled_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint")),
    )
    op.create_index("ix_complaint_status", "complaint", ["status", "id"])
    op.create_index("ix_complaint_enterprise", "complaint", ["enterprise_code"])
    op.create_index("ix_risk_warning_status", "risk_warning", ["status", "id"])
    op.create_index("ix_risk_warning_record", "risk_warning", ["record_id"])
    op.create_index("ix_risk_warning_ebc", "risk_warning", ["ebc_code", "id"])
    op.create_index("ix_risk_warning_ebp", "risk_warning", ["ebp_code", "id"])


def downgrade() -> None:
    op.drop_table("complaint")
    op.drop_table("risk_warning")
    op.drop_table("risk_count")
    op.drop_table("risk_link")
    op.drop_table("supervision_profile")
    op.drop_index("ix_credit_assessment_enterprise", table_name="credit_assessment")
    op.drop_table("credit_assessment")
    with op.batch_alter_table("declaration") as batch_op:
        batch_op.drop_column("risk")
    with op.batch_alter_table("enterprise") as batch_op:
        batch_op.drop_column("credit_level")
