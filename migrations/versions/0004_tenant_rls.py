"""tenant isolation: row-level security on case data, keyed on the request's ambito

Defence in depth: every query already filters by ambito in the access policy; these policies
make a forgotten filter return nothing instead of another ambito's citizens. The application
sets `snodo.ambito_id` for each transaction (the principal's ambito, or '*' for system work
such as the console commands and `snodo audit verify`); unset or empty means no rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 00:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "person",
    "household",
    "dossier",
    "dossier_event",
    "dossier_entry",
    "dossier_participant",
    "break_glass",
    "consent",
    "referral",
    "audit_event",
    "outbox_event",
)

CONDITION = (
    "(current_setting('snodo.ambito_id', true) = '*' "
    "OR ambito_id = nullif(nullif(current_setting('snodo.ambito_id', true), ''), '*')::uuid)"
)


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {CONDITION} WITH CHECK {CONDITION}")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
