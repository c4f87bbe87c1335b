"""Statistics (统计监测): the hourly rollups, what the records carry for them, and the documented views a
read-only role (``sw_readonly``, PostgreSQL) may query for heavier analysis (docs/statistics.md).

Revision ID: 0008_stats_rollups
Revises: 0007_audit_keys
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_stats_rollups"
down_revision: str | None = "0007_audit_keys"
branch_labels = None
depends_on = None

DECIMAL = sa.Numeric(19, 5).with_variant(sa.String(48), "sqlite")  # app.db.ExactDecimal
RECORD_COLUMNS = (
    ("documents_first_at", sa.DateTime(timezone=True)),
    ("documents_last_at", sa.DateTime(timezone=True)),
    ("customs_accepted_at", sa.DateTime(timezone=True)),
    ("settled_at", sa.DateTime(timezone=True)),
    ("tax_total", DECIMAL),
    ("trade_mode", sa.String(length=8)),
    ("port_code", sa.String(length=8)),
)


# The views analysts read (Grafana, Superset, SQL): the rollups with the tax in yuan, and the purchases and
# documents without personal data (no buyer ID, no payloads). Column lists are the documented contract.
VIEWS = {
    "analytics_rollup_hourly": """
        SELECT hour, metric, code, ebp_code AS platform_code, ebc_code AS seller_code, trade_mode, port_code,
               n, CAST(amount_e5 AS NUMERIC) / 100000 AS amount_cny
        FROM stats_rollup""",
    "analytics_purchase": """
        SELECT id AS record_id, ebp_code AS platform_code, order_no, ebc_code AS seller_code, status,
               trade_mode, port_code, tax_total AS tax_cny, created_at, updated_at, documents_first_at,
               documents_last_at, matched_at, customs_accepted_at, settled_at
        FROM match_record""",
    "analytics_document": """
        SELECT seq, doc_type, owner_code, order_no, sender_code, app_type, state, outcome, http_status,
               accepted_at, processed_at
        FROM submission""",
}
ROLLUP_TABLES = ("stats_rollup", "stats_rollup_daily")
READONLY_ROLE = "sw_readonly"
# Roles belong to the whole cluster: created once (by whichever database migrates first; a concurrent twin
# is tolerated), and only by a user allowed to create roles — otherwise the views are made without grants
# and an administrator runs the GRANTs of docs/statistics.md.
CREATE_ROLE = f"""
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READONLY_ROLE}') THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
    RAISE NOTICE 'not allowed to create role {READONLY_ROLE}: create it and grant SELECT on the views by hand';
    RETURN;
  END IF;
  CREATE ROLE {READONLY_ROLE} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$"""  # noqa: S608 - constants of this migration
GRANTS = f"""
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READONLY_ROLE}') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO {READONLY_ROLE}';
    {" ".join(f"GRANT SELECT ON {name} TO {READONLY_ROLE};" for name in VIEWS)}
  END IF;
END
$$"""  # noqa: S608 - constants of this migration


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=24), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("ebp_code", sa.String(length=18), nullable=False),
        sa.Column("ebc_code", sa.String(length=18), nullable=False),
        sa.Column("trade_mode", sa.String(length=8), nullable=False),
        sa.Column("port_code", sa.String(length=8), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("amount_e5", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour", "metric", "code", "ebp_code", "ebc_code", "trade_mode", "port_code", name=op.f(f"pk_{name}")
        ),
    )
    with op.batch_alter_table(name) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_metric_hour"), ["metric", "hour"], unique=False)


def upgrade() -> None:
    for name in ROLLUP_TABLES:
        _rollup_table(name)
    with op.batch_alter_table("match_record") as batch_op:
        for name, type_ in RECORD_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE_ROLE)
        op.execute(GRANTS)


def downgrade() -> None:
    # The role stays: other databases of the cluster may use it.
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("match_record") as batch_op:
        for name, _ in reversed(RECORD_COLUMNS):
            batch_op.drop_column(name)
    for name in reversed(ROLLUP_TABLES):
        with op.batch_alter_table(name) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{name}_metric_hour"))
        op.drop_table(name)
