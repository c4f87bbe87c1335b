"""Delivery workers woken by NOTIFY on new feed events (PostgreSQL); webhook signing secrets sealed at rest.

Revision ID: 0014_notify_more
Revises: 0009_risk_credit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.config import Settings, get_settings
from app.crypto.secret_box import PREFIX, SecretBox

revision: str = "0014_notify_more"
down_revision: str | None = "0013_console_stats"
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


def _box() -> SecretBox:
    settings = op.get_context().config.attributes.get("settings") if op.get_context().config else None
    return SecretBox((settings if isinstance(settings, Settings) else get_settings()).webhook_secret_key_list())


_subscription = sa.table(
    "subscription",
    sa.column("id", sa.Uuid()),
    sa.column("secret", sa.String()),
    sa.column("previous_secret", sa.String()),
)


def _rewrite(change: str) -> None:
    """Every stored secret sealed (``seal``) or opened again (``open``), row by row."""
    box = _box()

    def convert(value: str | None, context: str) -> str | None:
        if value is None or value.startswith(PREFIX) == (change == "seal"):
            return value  # already as wanted (a re-run, or a row written by the new code)
        return box.seal(value, context) if change == "seal" else box.open(value, context)

    bind = op.get_bind()
    rows = bind.execute(sa.select(_subscription.c.id, _subscription.c.secret, _subscription.c.previous_secret)).all()
    for row_id, secret, previous in rows:
        bind.execute(
            sa.update(_subscription)
            .where(_subscription.c.id == row_id)
            .values(secret=convert(secret, str(row_id)), previous_secret=convert(previous, str(row_id)))
        )


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch_op:
        batch_op.alter_column("secret", type_=sa.String(length=255), existing_nullable=False)
        batch_op.alter_column("previous_secret", type_=sa.String(length=255), existing_nullable=True)
    _rewrite("seal")
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
    _rewrite("open")
    with op.batch_alter_table("subscription") as batch_op:
        batch_op.alter_column("secret", type_=sa.String(length=100), existing_nullable=False)
        batch_op.alter_column("previous_secret", type_=sa.String(length=100), existing_nullable=True)
