"""The access log: one row per read or write of dossier content, in the same transaction.

The database chains each row to the previous one of the same ambito (trigger
`snodo_audit_chain`; an ambito has 16 chains, and a row goes to the lowest one no concurrent
transaction holds, whose head stays locked until commit); `verify` recomputes every chain.
So that requests do not hold a chain while they work, `record` only notes the row,
and the rows are inserted as the transaction's last statements, just before it commits
(`before_commit` below): the lock is then held for the insert and the commit alone, and the
chain follows commit order. The commit happens before the response is sent (SessionDep), so if
the insert fails the request fails, and no content is ever shown without its trace. A savepoint
rolled back takes the rows noted inside it with it, as an insert would have been.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Uuid, column, event, func, insert, select, text, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.core.context import request_id_var
from app.core.enums import AuditAction, Section
from app.core.principal import Principal
from app.models import AuditEvent
from app.models.base import new_id

ZERO_HASH = bytes(32)
PURPOSE_CASEWORK = "presa_in_carico"
_PENDING = "snodo.audit.pending"  # Session.info key: rows noted, not yet inserted
_MARKS = "snodo.audit.marks"  # Session.info key: savepoint → rows noted before it began
_INSERT = insert(AuditEvent)  # on a connection: a plain Core insert, no ORM bulk path


def _values(
    principal: Principal,
    *,
    action: AuditAction,
    resource_type: str,
    now: datetime,
    resource_id: uuid.UUID | None,
    dossier_id: uuid.UUID | None,
    dossier_ids: Sequence[uuid.UUID] | None,
    section: Section | None,
    purpose: str,
) -> dict[str, Any]:
    return {
        "id": new_id(),  # time-ordered: the access log is read oldest first (occurred_at, id)
        "ambito_id": principal.ambito_id,
        "occurred_at": now,
        "actor_kind": principal.kind,
        "actor_id": principal.id,
        "organization_id": principal.organization_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "dossier_id": dossier_id,
        "dossier_ids": None if dossier_ids is None else list(dict.fromkeys(dossier_ids)),  # each once
        "section": section,
        "purpose": purpose,
        "request_id": request_id_var.get(),
    }


async def record(
    session: AsyncSession,
    principal: Principal,
    *,
    action: AuditAction,
    resource_type: str,
    now: datetime,
    resource_id: uuid.UUID | None = None,
    dossier_id: uuid.UUID | None = None,
    dossier_ids: Sequence[uuid.UUID] | None = None,
    section: Section | None = None,
    purpose: str = PURPOSE_CASEWORK,
) -> None:
    """Note the access-log row; it is inserted just before the transaction commits. A list or a
    search names in `dossier_ids` the dossiers it showed, in order, each once (an empty sequence
    when none)."""
    values = _values(
        principal,
        action=action,
        resource_type=resource_type,
        now=now,
        resource_id=resource_id,
        dossier_id=dossier_id,
        dossier_ids=dossier_ids,
        section=section,
        purpose=purpose,
    )
    session.info.setdefault(_PENDING, []).append(values)


def _insert_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        # Core, on the session's connection: the ORM's bulk path costs a request ~1 ms more.
        # One row (the common case) as a single execute, not a batch of one.
        session.connection().execute(_INSERT, pending[0] if len(pending) == 1 else pending)
    session.info.pop(_MARKS, None)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _insert_pending(session)


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, ()))


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    marks = session.info.get(_MARKS, {})
    if previous_transaction.nested and previous_transaction in marks:
        del session.info.get(_PENDING, [])[marks.pop(previous_transaction) :]
    elif not previous_transaction.nested:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)


@dataclass(frozen=True)
class ChainBreak:
    ambito_id: uuid.UUID
    chain: int
    seq: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    chains: int
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks


async def verify(session: AsyncSession) -> VerifyResult:
    """Recompute every chain: hashes, links, no gaps, and the head pointing at the last row."""
    heads = {
        (row.ambito_id, row.chain): (row.last_seq, row.last_hash)
        for row in await session.execute(
            text("SELECT ambito_id, chain, last_seq, last_hash FROM audit_chain_head")
        )
    }
    rows = await session.stream(
        text(
            "SELECT ambito_id, chain, seq, prev_hash, hash, "
            "sha256(prev_hash || snodo_audit_canonical(e)) AS recomputed "
            "FROM audit_event e ORDER BY ambito_id, chain, seq"
        )
    )
    breaks: list[ChainBreak] = []
    count = 0
    current: tuple[uuid.UUID, int] | None = None
    expected_seq, expected_prev = 1, ZERO_HASH
    last: dict[tuple[uuid.UUID, int], tuple[int, bytes]] = {}
    async for row in rows:
        count += 1
        key = (row.ambito_id, row.chain)
        if key != current:
            current, expected_seq, expected_prev = key, 1, ZERO_HASH
        reasons = []
        if row.seq != expected_seq:
            reasons.append(f"expected row {expected_seq}: rows missing")
        if bytes(row.prev_hash) != expected_prev:
            reasons.append("does not link to the previous row")
        if bytes(row.hash) != bytes(row.recomputed):
            reasons.append("content altered after it was written")
        breaks += [ChainBreak(row.ambito_id, row.chain, row.seq, reason) for reason in reasons]
        expected_seq, expected_prev = row.seq + 1, bytes(row.hash)
        last[key] = (row.seq, bytes(row.hash))
    for (ambito_id, chain), (seq, digest) in heads.items():
        if seq == 0 and (ambito_id, chain) not in last:
            continue  # a chain not used yet
        if last.get((ambito_id, chain)) != (seq, bytes(digest)):
            breaks.append(
                ChainBreak(ambito_id, chain, seq, "the chain head does not match the last row: rows removed")
            )
    return VerifyResult(rows=count, chains=len(last), breaks=breaks)


async def dossier_log(
    session: AsyncSession,
    dossier_id: uuid.UUID,
    ambito_id: uuid.UUID,
    *,
    after: uuid.UUID | None,
    limit: int,
    lists: bool = True,
) -> list[AuditEvent]:
    """The rows about the dossier and (unless `lists` is false) the lists and searches that showed
    it, oldest first.

    In time order, not by `seq`: each of the ambito's 16 chains numbers its own rows, so rows of
    concurrent requests share numbers (paging by `seq` skipped some). The lists come from
    `snodo_lists_showing` (migration 0022): under row-level security PostgreSQL may not use the
    index of `dossier_ids` for `@>`, and read the whole access log instead."""
    about = select(AuditEvent.id.label("id")).where(AuditEvent.dossier_id == dossier_id)
    if lists:
        showing = func.snodo_lists_showing(dossier_id, ambito_id).table_valued(
            column("audit_event_id", Uuid())
        )
        # a row is about the dossier or a list that showed it; union: once either way
        found = union(about, select(showing.c.audit_event_id.label("id"))).subquery("rows")
    else:
        found = about.subquery("rows")
    statement = select(AuditEvent).join(found, found.c.id == AuditEvent.id)
    if after is not None:
        previous = (
            await session.execute(select(AuditEvent.occurred_at, AuditEvent.id).where(AuditEvent.id == after))
        ).one_or_none()
        if previous is None:
            return []  # not a cursor this log gave
        statement = statement.where(tuple_(AuditEvent.occurred_at, AuditEvent.id) > tuple_(*previous))
    statement = statement.order_by(AuditEvent.occurred_at, AuditEvent.id).limit(limit)
    return list((await session.scalars(statement)).all())
