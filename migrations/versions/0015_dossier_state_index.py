"""A dossier index by state, newest first: where a social worker's worklist filtered by one state starts.

Filtered by state, the worklist walked each access basis until it met enough dossiers in that
state. A state rare along a basis made that basis run to its end: closed dossiers (24% of all) are
rarely still routed to a pool, so "chiuso" walked every routing in force of the social worker's
pools (as.inzago at 1M: 88 ms). A social worker sees a good part of the ambito (the residents of
a comune, an eighth of it or more here), so walking that state's dossiers newest first and checking
access on each finds a page after a few hundred.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dossier_ambito_state", "dossier", ["ambito_id", "state", "id"])


def downgrade() -> None:
    op.drop_index("ix_dossier_ambito_state", table_name="dossier")
