"""person.name_key as text: accent folding can lengthen a name (found by fuzzing)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 00:42:30.838581
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column(
        "person",
        "name_key",
        existing_type=sa.VARCHAR(length=201),
        type_=sa.Text(),
        existing_nullable=False,
        existing_server_default=sa.Computed(
            "snodo_fold((((family_name)::text || ' '::text) || (given_name)::text))", persisted=True
        ),
    )


def downgrade() -> None:
    op.alter_column(
        "person",
        "name_key",
        existing_type=sa.Text(),
        type_=sa.VARCHAR(length=201),
        existing_nullable=False,
        existing_server_default=sa.Computed(
            "snodo_fold((((family_name)::text || ' '::text) || (given_name)::text))", persisted=True
        ),
    )
