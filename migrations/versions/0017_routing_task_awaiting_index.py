"""The routing tasks awaiting an answer by dossier, newest first: where the `overdue` filter starts.

The worklist's `overdue` filter was a condition on every dossier each access basis walked: a
social worker's bases went through her comune's residents newest first until 51 had an answer
overdue (at 1M, as.melzo 41 ms + 4 planning; afol 20 ms). This partial index (the requested
tasks: 147,000 at 1M) gives the dossiers with an answer overdue newest first; access is checked on
each (docs/performance.md).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REQUESTED = sa.text("status = 'requested'")


def upgrade() -> None:
    op.create_index(
        "ix_routing_task_awaiting",
        "routing_task",
        ["ambito_id", "dossier_id", "due_at"],
        postgresql_where=REQUESTED,
    )


def downgrade() -> None:
    op.drop_index("ix_routing_task_awaiting", table_name="routing_task", postgresql_where=REQUESTED)
