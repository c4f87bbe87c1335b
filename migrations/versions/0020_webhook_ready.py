"""Webhook deliveries marked ``ready`` (the possible heads of their queues) and indexed in due order, so that a
claim reads about as many rows as it takes rather than every pending delivery (docs/webhooks.md).

A pending delivery is ready exactly when it is the earliest pending one of its (subscription, ordering_key)
queue and its subscription is active (app/services/delivery_heads.py); for the deliveries already pending, this
works that out.

Revision ID: 0020_webhook_ready
Revises: 0019_webhook_pending_head
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0020_webhook_ready"
down_revision: str | None = "0019_webhook_pending_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ready", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.execute(
        "UPDATE webhook_delivery SET ready = NOT EXISTS (SELECT 1 FROM webhook_delivery AS earlier"
        " WHERE earlier.subscription_id = webhook_delivery.subscription_id"
        " AND earlier.ordering_key = webhook_delivery.ordering_key AND earlier.status = 'pending'"
        " AND (earlier.event_tx < webhook_delivery.event_tx"
        " OR (earlier.event_tx = webhook_delivery.event_tx AND earlier.event_id < webhook_delivery.event_id)))"
        " AND EXISTS (SELECT 1 FROM subscription"
        " WHERE subscription.id = webhook_delivery.subscription_id AND subscription.status = 'active')"
        " WHERE status = 'pending'"
    )
    op.create_index(
        "ix_webhook_delivery_ready",
        "webhook_delivery",
        ["next_attempt_at", "event_tx", "event_id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND ready = true"),
        sqlite_where=sa.text("status = 'pending' AND ready = 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_ready", table_name="webhook_delivery")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_column("ready")
