"""Notes in a dossier's sections; special-category notes are hidden without leaving a trace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import AuditAction, Section
from app.core.pagination import PageRequest
from app.core.principal import Principal
from app.core.problems import NotFound, field_error
from app.models import DossierEntry
from app.schemas.intake import EntryCreate
from app.services.access import audit
from app.services.access.policy import LABEL_SECTION, load_dossier


class EntryNotFound(NotFound):
    slug = "entry-not-found"
    title_en = "Entry not found"
    title_it = "Annotazione non trovata"


async def add(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, data: EntryCreate, *, now: datetime
) -> DossierEntry:
    """Add an entry to a section of a dossier the principal may write; a label must belong to that section."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    access.require(data.section, write=True)
    if data.label is not None and LABEL_SECTION[data.label] != data.section:
        raise field_error(
            "body.label",
            f"{data.label.value} belongs to the {LABEL_SECTION[data.label].value} section",
            "label_section",
        )
    entry = DossierEntry(
        ambito_id=access.dossier.ambito_id,
        dossier_id=dossier_id,
        section=data.section,
        label=data.label,
        text=data.text,
        author_kind=principal.kind,
        author_id=principal.id,
        author_organization_id=principal.organization_id,
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    await audit.record(
        session,
        principal,
        action=AuditAction.create,
        resource_type="entry",
        resource_id=entry.id,
        dossier_id=dossier_id,
        section=data.section,
        now=now,
    )
    return entry


async def list_section(
    session: AsyncSession,
    principal: Principal,
    dossier_id: uuid.UUID,
    section: Section,
    page: PageRequest,
    *,
    now: datetime,
) -> tuple[Sequence[DossierEntry], int, uuid.UUID | None]:
    """One page of a dossier section's entries the principal may see, with the total count."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    access.require(section)
    base = select(DossierEntry).where(
        DossierEntry.dossier_id == dossier_id,
        DossierEntry.section == section,
        access.label_condition(DossierEntry.label, DossierEntry.author_organization_id),
    )
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if page.after is not None:
        base = base.where(DossierEntry.id > page.after)
    rows = (await session.scalars(base.order_by(DossierEntry.id).limit(page.limit + 1))).all()
    await audit.record(
        session,
        principal,
        action=AuditAction.list,
        resource_type="entry",
        dossier_id=dossier_id,
        section=section,
        now=now,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, total, rows[-1].id if more else None


async def get(
    session: AsyncSession, principal: Principal, dossier_id: uuid.UUID, entry_id: uuid.UUID, *, now: datetime
) -> DossierEntry:
    """Read one entry of a dossier, if its label and section are visible to the principal."""
    access = await load_dossier(session, principal, dossier_id, now=now)
    entry = await session.scalar(
        select(DossierEntry).where(
            DossierEntry.id == entry_id,
            DossierEntry.dossier_id == dossier_id,
            access.label_condition(DossierEntry.label, DossierEntry.author_organization_id),
        )
    )
    if entry is None:
        raise EntryNotFound()
    access.require(entry.section)
    await audit.record(
        session,
        principal,
        action=AuditAction.read,
        resource_type="entry",
        resource_id=entry.id,
        dossier_id=dossier_id,
        section=entry.section,
        now=now,
    )
    return entry
