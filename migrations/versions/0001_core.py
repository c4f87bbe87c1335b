"""core: enterprises, keys, delegations, documents, match records, events

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 15:45:40.199756
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enterprise",
        sa.Column("code", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_enterprise")),
    )
    op.create_table(
        "match_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ebp_code", sa.String(length=18), nullable=False),
        sa.Column("order_no", sa.String(length=60), nullable=False),
        sa.Column("ebc_code", sa.String(length=18), nullable=True),
        sa.Column("buyer_id_number", sa.String(length=60), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("missing", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("discrepancies", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_record")),
        sa.UniqueConstraint("ebp_code", "order_no", name=op.f("uq_match_record_ebp_code_order_no")),
    )
    with op.batch_alter_table("match_record", schema=None) as batch_op:
        batch_op.create_index("ix_match_record_buyer", ["buyer_id_number"], unique=False)
        batch_op.create_index("ix_match_record_created", ["created_at"], unique=False)
        batch_op.create_index("ix_match_record_ebc_code", ["ebc_code"], unique=False)
        batch_op.create_index("ix_match_record_order_no", ["order_no"], unique=False)
        batch_op.create_index("ix_match_record_status_updated", ["status", "updated_at", "id"], unique=False)
        batch_op.create_index("ix_match_record_updated", ["updated_at", "id"], unique=False)

    op.create_table(
        "raw_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_message")),
    )
    with op.batch_alter_table("raw_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_raw_message_sha256"), ["sha256"], unique=False)

    op.create_table(
        "api_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("enterprise_code", sa.String(length=18), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_code"], ["enterprise.code"], name=op.f("fk_api_key_enterprise_code_enterprise")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_key_prefix")),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_enterprise_code"), ["enterprise_code"], unique=False)

    op.create_table(
        "delegation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal_code", sa.String(length=18), nullable=False),
        sa.Column("agent_code", sa.String(length=18), nullable=False),
        sa.Column("document_types", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_code"], ["enterprise.code"], name=op.f("fk_delegation_agent_code_enterprise")),
        sa.ForeignKeyConstraint(
            ["principal_code"], ["enterprise.code"], name=op.f("fk_delegation_principal_code_enterprise")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegation")),
        sa.UniqueConstraint("principal_code", "agent_code", name=op.f("uq_delegation_principal_code_agent_code")),
    )
    with op.batch_alter_table("delegation", schema=None) as batch_op:
        batch_op.create_index("ix_delegation_agent", ["agent_code"], unique=False)

    op.create_table(
        "document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("doc_type", sa.String(length=8), nullable=False),
        sa.Column("owner_code", sa.String(length=18), nullable=False),
        sa.Column("business_no", sa.String(length=60), nullable=False),
        sa.Column("order_no", sa.String(length=60), nullable=False),
        sa.Column("ebp_code", sa.String(length=18), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("app_type", sa.String(length=1), nullable=False),
        sa.Column("guid", sa.String(length=36), nullable=False),
        sa.Column("app_time", sa.String(length=14), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("sender_code", sa.String(length=18), nullable=False),
        sa.Column("raw_message_id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["raw_message_id"], ["raw_message.id"], name=op.f("fk_document_raw_message_id_raw_message")
        ),
        sa.ForeignKeyConstraint(["record_id"], ["match_record.id"], name=op.f("fk_document_record_id_match_record")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
        sa.UniqueConstraint(
            "doc_type", "owner_code", "business_no", name=op.f("uq_document_doc_type_owner_code_business_no")
        ),
    )
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index("ix_document_business_no", ["business_no", "doc_type"], unique=False)
        batch_op.create_index("ix_document_order_no", ["order_no", "doc_type"], unique=False)
        batch_op.create_index("ix_document_record", ["record_id"], unique=False)

    op.create_table(
        "record_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("fk_record_event_document_id_document")),
        sa.ForeignKeyConstraint(
            ["record_id"], ["match_record.id"], name=op.f("fk_record_event_record_id_match_record")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_event")),
    )
    with op.batch_alter_table("record_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_record_event_document_id"), ["document_id"], unique=False)
        batch_op.create_index("ix_record_event_record", ["record_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("record_event", schema=None) as batch_op:
        batch_op.drop_index("ix_record_event_record")
        batch_op.drop_index(batch_op.f("ix_record_event_document_id"))

    op.drop_table("record_event")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index("ix_document_record")
        batch_op.drop_index("ix_document_order_no")
        batch_op.drop_index("ix_document_business_no")

    op.drop_table("document")
    with op.batch_alter_table("delegation", schema=None) as batch_op:
        batch_op.drop_index("ix_delegation_agent")

    op.drop_table("delegation")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_enterprise_code"))

    op.drop_table("api_key")
    with op.batch_alter_table("raw_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_message_sha256"))

    op.drop_table("raw_message")
    with op.batch_alter_table("match_record", schema=None) as batch_op:
        batch_op.drop_index("ix_match_record_updated")
        batch_op.drop_index("ix_match_record_status_updated")
        batch_op.drop_index("ix_match_record_order_no")
        batch_op.drop_index("ix_match_record_ebc_code")
        batch_op.drop_index("ix_match_record_created")
        batch_op.drop_index("ix_match_record_buyer")

    op.drop_table("match_record")
    op.drop_table("enterprise")
