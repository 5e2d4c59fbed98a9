"""The dossier's timeline: what happened to it, by whom, when (shown filtered by the reader's labels)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import DossierState
from app.core.principal import Principal
from app.models import Dossier, DossierEvent


async def add_event(
    session: AsyncSession,
    dossier: Dossier,
    kind: str,
    *,
    principal: Principal | None,
    now: datetime,
    from_state: DossierState | None = None,
    to_state: DossierState | None = None,
    reason: str | None = None,
    labels: Sequence[str] = (),
    data: dict[str, Any] | None = None,
) -> None:
    """Append an event to a dossier's timeline."""
    session.add(
        DossierEvent(
            ambito_id=dossier.ambito_id,
            dossier_id=dossier.id,
            occurred_at=now,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            labels=sorted(labels),
            actor_kind=principal.kind if principal else None,
            actor_id=principal.id if principal else None,
            actor_organization_id=principal.organization_id if principal else None,
            data=data or {},
        )
    )
