"""The consents that carry a special category, indexed apart: where a special-category filter starts.

A social worker filtering the worklist by a special-category need area (dipendenze, salute
mentale...) asks for dossiers whose person has a consent carrying that label: ~1% of persons at 1M.
Walked from the caller's access bases, every basis ran to its end to find them (250 ms). Now the
worklist starts from these consents (a partial index: ~25,000 of 600,000 at 1M), sorts their
dossiers newest first and checks access on the newest only. A partial index, not a GIN on the
labels: under row-level security only LEAKPROOF operators become index conditions, and the array
operators are not; a partial index whose predicate the query repeats is used all the same.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_consent_labelled_person",
        "consent",
        ["person_id"],
        postgresql_where=sa.text("cardinality(labels) > 0"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_consent_labelled_person",
        table_name="consent",
        postgresql_where=sa.text("cardinality(labels) > 0"),
    )
