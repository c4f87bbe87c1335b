"""Delivery workers woken by NOTIFY on new feed events (PostgreSQL).

Revision ID: 0014_notify_more
Revises: 0009_risk_credit
"""

from __future__ import annotations

from alembic import op

revision: str = "0014_notify_more"
down_revision: str | None = "0009_risk_credit"
branch_labels = None
depends_on = None

# Every writer of record_event (the matcher, receipts, the console …) wakes the delivery workers on commit
# without having to remember to: one NOTIFY per statement, and PostgreSQL folds a transaction's identical
# notifications into one. The channel is app.services.webhook_delivery.FEED_CHANNEL.
FEED_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION sw_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sw_feed', '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FEED_NOTIFY_FUNCTION)
        op.execute(
            "CREATE TRIGGER record_event_feed_notify AFTER INSERT ON record_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION sw_feed_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS record_event_feed_notify ON record_event")
        op.execute("DROP FUNCTION IF EXISTS sw_feed_notify()")
