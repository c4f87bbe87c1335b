"""The staged pipeline: the submission log (accepted documents, the match stage's queue, their business
receipts) and the feed position of record events.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "submission",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("doc_type", sa.String(length=8), nullable=False),
        sa.Column("owner_code", sa.String(length=18), nullable=False),
        sa.Column("business_no", sa.String(length=60), nullable=False),
        sa.Column("order_no", sa.String(length=60), nullable=False),
        sa.Column("app_type", sa.String(length=1), nullable=False),
        sa.Column("app_status", sa.String(length=1), nullable=False),
        sa.Column("guid", sa.String(length=36), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("sender_code", sa.String(length=18), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("raw_message_id", sa.Uuid(), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["raw_message_id"], ["raw_message.id"], name=op.f("fk_submission_raw_message_id_raw_message")
        ),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("fk_submission_document_id_document")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_submission")),
    )
    with op.batch_alter_table("submission") as batch_op:
        batch_op.create_index(
            "ix_submission_pending",
            ["seq"],
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        )
        batch_op.create_index(
            "ix_submission_dead",
            ["seq"],
            postgresql_where=sa.text("state = 'dead'"),
            sqlite_where=sa.text("state = 'dead'"),
        )
        batch_op.create_index("ix_submission_key", ["doc_type", "owner_code", "business_no", "seq"])
        batch_op.create_index("ix_submission_order_no", ["order_no", "seq"])
        batch_op.create_index(op.f("ix_submission_document_id"), ["document_id"])

    # The feed's position is (transaction id, event id): a reader only takes events of transactions older
    # than every transaction still running, so a late commit can never slip in behind its cursor
    # (app/lifecycle/feed.py). SQLite has one writer at a time: ids alone are in commit order there.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.add_column(
            "record_event",
            sa.Column(
                "tx", sa.BigInteger(), server_default=sa.text("(pg_current_xact_id()::text)::bigint"), nullable=False
            ),
        )
    else:
        with op.batch_alter_table("record_event") as batch_op:
            batch_op.add_column(sa.Column("tx", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("record_event") as batch_op:
        batch_op.create_index("ix_record_event_position", ["tx", "id"])


def downgrade() -> None:
    with op.batch_alter_table("record_event") as batch_op:
        batch_op.drop_index("ix_record_event_position")
        batch_op.drop_column("tx")
    with op.batch_alter_table("submission") as batch_op:
        batch_op.drop_index(op.f("ix_submission_document_id"))
        batch_op.drop_index("ix_submission_order_no")
        batch_op.drop_index("ix_submission_key")
        batch_op.drop_index("ix_submission_dead")
        batch_op.drop_index("ix_submission_pending")
    op.drop_table("submission")
