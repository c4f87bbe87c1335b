"""declaration: goods, declarations, dispatch outbox, agency receipts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:23:02.679363
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "goods",
        sa.Column("ebc_code", sa.String(length=18), nullable=False),
        sa.Column("item_no", sa.String(length=30), nullable=False),
        sa.Column("gcode", sa.String(length=10), nullable=False),
        sa.Column("gname", sa.String(length=250), nullable=False),
        sa.Column("unit1", sa.String(length=3), nullable=False),
        sa.Column(
            "qty1_factor", sa.Numeric(precision=19, scale=5).with_variant(sa.String(48), "sqlite"), nullable=False
        ),
        sa.Column("unit2", sa.String(length=3), nullable=True),
        sa.Column(
            "qty2_factor", sa.Numeric(precision=19, scale=5).with_variant(sa.String(48), "sqlite"), nullable=True
        ),
        sa.Column("country", sa.String(length=3), nullable=False),
        sa.Column("vat_rate", sa.Numeric(precision=6, scale=4).with_variant(sa.String(48), "sqlite"), nullable=False),
        sa.Column(
            "consumption_tax_rate",
            sa.Numeric(precision=6, scale=4).with_variant(sa.String(48), "sqlite"),
            nullable=False,
        ),
        sa.Column("positive_list", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ebc_code", "item_no", name=op.f("pk_goods")),
    )
    op.create_table(
        "declaration",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("inventory", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("tax", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "dutiable_value", sa.Numeric(precision=19, scale=5).with_variant(sa.String(48), "sqlite"), nullable=False
        ),
        sa.Column("buyer_id_number", sa.String(length=60), nullable=False),
        sa.Column("decl_year", sa.Integer(), nullable=False),
        sa.Column("counts_to_quota", sa.Boolean(), nullable=False),
        sa.Column("rejection", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["match_record.id"], name=op.f("fk_declaration_record_id_match_record")),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_declaration")),
    )
    with op.batch_alter_table("declaration", schema=None) as batch_op:
        batch_op.create_index("ix_declaration_buyer_year", ["buyer_id_number", "decl_year"], unique=False)

    op.create_table(
        "dispatch",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["match_record.id"], name=op.f("fk_dispatch_record_id_match_record")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch")),
        sa.UniqueConstraint("record_id", "agency", name=op.f("uq_dispatch_record_id_agency")),
    )
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.create_index("ix_dispatch_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "agency_receipt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("dispatch_id", sa.Uuid(), nullable=True),
        sa.Column("return_status", sa.String(length=10), nullable=False),
        sa.Column("return_info", sa.String(length=1000), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("callback_id", sa.String(length=100), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatch.id"], name=op.f("fk_agency_receipt_dispatch_id_dispatch")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["match_record.id"], name=op.f("fk_agency_receipt_record_id_match_record")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_receipt")),
        sa.UniqueConstraint("callback_id", name=op.f("uq_agency_receipt_callback_id")),
    )
    with op.batch_alter_table("agency_receipt", schema=None) as batch_op:
        batch_op.create_index("ix_agency_receipt_record", ["record_id", "received_at"], unique=False)

    op.create_table(
        "dispatch_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispatch_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["dispatch_id"], ["dispatch.id"], name=op.f("fk_dispatch_attempt_dispatch_id_dispatch")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_attempt")),
    )
    with op.batch_alter_table("dispatch_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_dispatch_attempt_dispatch", ["dispatch_id", "attempt_no"], unique=False)

    with op.batch_alter_table("match_record", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "agencies",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(
            sa.Column("rejection", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("match_record", schema=None) as batch_op:
        batch_op.drop_column("rejection")
        batch_op.drop_column("agencies")

    with op.batch_alter_table("dispatch_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatch_attempt_dispatch")

    op.drop_table("dispatch_attempt")
    with op.batch_alter_table("agency_receipt", schema=None) as batch_op:
        batch_op.drop_index("ix_agency_receipt_record")

    op.drop_table("agency_receipt")
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatch_due")

    op.drop_table("dispatch")
    with op.batch_alter_table("declaration", schema=None) as batch_op:
        batch_op.drop_index("ix_declaration_buyer_year")

    op.drop_table("declaration")
    op.drop_table("goods")
