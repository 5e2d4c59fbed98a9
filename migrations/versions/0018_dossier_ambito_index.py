"""The ambito's dossiers newest first: an index on dossier (ambito_id, id).

Where the worklist walks the ambito's dossiers newest first (a social worker's need area filter,
the pool basis of a filter walked along the dossiers), the only ordered path was the primary key,
filtered by ambito: with one ambito in the database every row passes, with several the walk also
reads every other ambito's dossiers, and PostgreSQL, expecting that, chose to collect and sort
every routing of the caller's pools instead (as.melzo, need area lavoro, with three ambiti in the
database: 3.4 s, docs/performance.md). This index walks one ambito's dossiers only.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dossier_ambito_id", "dossier", ["ambito_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_dossier_ambito_id", table_name="dossier")
