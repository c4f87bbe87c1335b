"""Certificates filed for enterprises (signed CEB XML), and each enterprise's signature policy.

Revision ID: 0005_certificates
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_certificates"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_code", sa.String(length=18), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=8), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_code"], ["enterprise.code"], name=op.f("fk_certificate_enterprise_code_enterprise")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_certificate_fingerprint")),
    )
    with op.batch_alter_table("certificate") as batch_op:
        batch_op.create_index(batch_op.f("ix_certificate_enterprise_code"), ["enterprise_code"], unique=False)
    with op.batch_alter_table("enterprise") as batch_op:
        batch_op.add_column(
            sa.Column("signature_policy", sa.String(length=20), server_default="verify-if-present", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("enterprise") as batch_op:
        batch_op.drop_column("signature_policy")
    with op.batch_alter_table("certificate") as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_enterprise_code"))
    op.drop_table("certificate")
