"""A partial index on the pending webhook deliveries for the claim's head-of-queue test (docs/webhooks.md).

Revision ID: 0019_webhook_pending_head
Revises: 0017_purchase_retention
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0019_webhook_pending_head"
down_revision: str | None = "0017_purchase_retention"
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_pending_head",
        "webhook_delivery",
        ["subscription_id", "ordering_key", "event_tx", "event_id"],
        unique=False,
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_pending_head", table_name="webhook_delivery")
