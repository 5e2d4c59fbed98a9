"""The access log is written as each transaction's last statements: a request that is still at
work does not hold up the others of its ambito, and a savepoint rolled back takes its rows along."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, session_scope, set_tenant
from app.core.enums import AuditAction, OrganizationKind, Role
from app.core.principal import Principal
from app.core.settings import Settings
from app.models import AuditEvent
from app.services.access import audit
from tests.db import create_database, drop_database

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
async def database(server_url: str, settings: Settings) -> AsyncIterator[Database]:
    from app.core import migrations

    url = await create_database(server_url, prefix="snodo_audit")
    await migrations.upgrade_async(url)
    database = Database.from_url(url, settings)
    yield database
    await database.dispose()
    await drop_database(server_url, url)


def reader(ambito_id: uuid.UUID) -> Principal:
    return Principal(
        kind="user",
        id=uuid.uuid4(),
        name="Assistente sociale",
        organization_id=uuid.uuid4(),
        organization_kind=OrganizationKind.comune,
        organization_name="Comune di Melzo",
        ambito_id=ambito_id,
        roles=frozenset({Role.social_worker}),
        scopes=frozenset(),
    )


async def count(database: Database, ambito_id: uuid.UUID) -> int:
    async with session_scope(database) as session:
        await set_tenant(session, ambito_id)
        return await session.scalar(select(func.count()).select_from(AuditEvent)) or 0


async def test_a_slow_request_does_not_hold_up_the_access_log_of_its_ambito(database: Database) -> None:
    ambito_id = uuid.uuid4()
    slow_started, slow_may_finish = asyncio.Event(), asyncio.Event()

    async def slow_request() -> None:
        async with session_scope(database) as session:
            await set_tenant(session, ambito_id)
            await audit.record(
                session, reader(ambito_id), action=AuditAction.list, resource_type="dossier", now=NOW
            )
            slow_started.set()
            await slow_may_finish.wait()  # still building its response

    async def quick_request() -> None:
        async with session_scope(database) as session:
            await set_tenant(session, ambito_id)
            await audit.record(
                session, reader(ambito_id), action=AuditAction.read, resource_type="dossier", now=NOW
            )

    slow = asyncio.create_task(slow_request())
    await slow_started.wait()
    await asyncio.wait_for(quick_request(), timeout=5)  # before: blocked on the chain head until `slow` ended
    assert await count(database, ambito_id) == 1
    slow_may_finish.set()
    await slow
    assert await count(database, ambito_id) == 2
    async with session_scope(database) as session:
        await set_tenant(session, "*")
        assert (await audit.verify(session)).ok


async def test_concurrent_transactions_take_separate_chains_and_all_verify(database: Database) -> None:
    ambito_id = uuid.uuid4()
    holding, may_finish = asyncio.Event(), asyncio.Event()

    async def holds_chain_zero() -> None:
        async with session_scope(database) as session:
            await set_tenant(session, ambito_id)
            values = {"id": uuid.uuid4(), "ambito_id": ambito_id, "occurred_at": NOW, "actor_kind": "user"}
            values |= {"actor_id": uuid.uuid4(), "organization_id": uuid.uuid4(), "action": AuditAction.read}
            values |= {"resource_type": "dossier", "purpose": "presa_in_carico"}
            await session.execute(insert(AuditEvent).values(**values))  # chain 0 is now held
            holding.set()
            await may_finish.wait()

    async def another() -> None:
        async with session_scope(database) as session:
            await set_tenant(session, ambito_id)
            await audit.record(
                session, reader(ambito_id), action=AuditAction.list, resource_type="dossier", now=NOW
            )

    await another()  # the ambito's first row creates its chain heads
    first = asyncio.create_task(holds_chain_zero())
    await holding.wait()
    await asyncio.wait_for(another(), timeout=5)  # did not wait for chain 0
    may_finish.set()
    await first
    await another()  # nobody holds chain 0 now: back to it
    async with session_scope(database) as session:
        await set_tenant(session, ambito_id)
        placed = (
            await session.execute(
                select(AuditEvent.chain, AuditEvent.seq).order_by(
                    AuditEvent.occurred_at, AuditEvent.chain, AuditEvent.seq
                )
            )
        ).all()
    assert sorted(placed) == [(0, 1), (0, 2), (0, 3), (1, 1)]
    async with session_scope(database) as session:
        await set_tenant(session, "*")
        result = await audit.verify(session)
    assert result.ok, result.breaks
    assert result.chains == 2


async def create_referral_and_fail(session: AsyncSession, principal: Principal) -> None:
    async with session.begin_nested():
        await audit.record(session, principal, action=AuditAction.create, resource_type="referral", now=NOW)
        raise RuntimeError("the referral could not be created")


async def read_and_fail(database: Database, principal: Principal) -> None:
    async with session_scope(database) as session:
        await set_tenant(session, principal.ambito_id)
        await audit.record(session, principal, action=AuditAction.read, resource_type="dossier", now=NOW)
        raise RuntimeError("the response could not be built")


async def test_rows_noted_in_a_rolled_back_savepoint_are_not_written(database: Database) -> None:
    ambito_id = uuid.uuid4()
    principal = reader(ambito_id)
    async with session_scope(database) as session:
        await set_tenant(session, ambito_id)
        await audit.record(session, principal, action=AuditAction.list, resource_type="dossier", now=NOW)
        with pytest.raises(RuntimeError):
            await create_referral_and_fail(session, principal)
        async with session.begin_nested():
            await audit.record(session, principal, action=AuditAction.read, resource_type="dossier", now=NOW)
    async with session_scope(database) as session:
        await set_tenant(session, ambito_id)
        actions = (await session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq))).all()
    assert actions == [AuditAction.list, AuditAction.read]


async def test_a_rolled_back_transaction_writes_no_row(database: Database) -> None:
    ambito_id = uuid.uuid4()
    with pytest.raises(RuntimeError):
        await read_and_fail(database, reader(ambito_id))
    assert await count(database, ambito_id) == 0


async def test_a_dossiers_access_log_pages_through_every_chain_once_oldest_first(database: Database) -> None:
    """Concurrent requests write to different chains, each numbering its own rows: the dossier's log
    (the citizen's copy) must still list each row once, in time order, page after page."""
    ambito_id, shown = uuid.uuid4(), uuid.uuid4()
    principal = reader(ambito_id)
    holding, may_finish = asyncio.Event(), asyncio.Event()

    async def access(
        minute: int, dossier_id: uuid.UUID | None = None, dossier_ids: list[uuid.UUID] | None = None
    ) -> None:
        async with session_scope(database) as session:
            await set_tenant(session, ambito_id)
            await audit.record(
                session,
                principal,
                action=AuditAction.read,
                resource_type="dossier",
                now=NOW.replace(minute=minute),
                dossier_id=dossier_id,
                dossier_ids=dossier_ids,
            )

    async def holds_chain_zero() -> None:
        async with session_scope(database) as session:
            await set_tenant(session, ambito_id)
            values = {"id": uuid.uuid4(), "ambito_id": ambito_id, "occurred_at": NOW.replace(minute=1)}
            values |= {
                "actor_kind": "user",
                "actor_id": principal.id,
                "organization_id": principal.organization_id,
            }
            values |= {"action": AuditAction.read, "resource_type": "dossier", "dossier_id": shown}
            values |= {"purpose": "presa_in_carico"}
            await session.execute(insert(AuditEvent).values(**values))
            holding.set()
            await may_finish.wait()

    await access(0, dossier_id=shown)  # chain 0, row 1
    first = asyncio.create_task(holds_chain_zero())  # chain 0, row 2
    await holding.wait()
    await access(2, dossier_id=shown)  # chain 1, row 1
    await access(3, dossier_ids=[uuid.uuid4(), shown])  # chain 1, row 2: a list that showed it
    await access(4, dossier_id=uuid.uuid4())  # another dossier's
    may_finish.set()
    await first
    await access(5, dossier_id=shown)  # chain 0, row 3

    seen: list[tuple[int, int, int]] = []
    after = None
    async with session_scope(database) as session:
        await set_tenant(session, ambito_id)
        while True:
            page = await audit.dossier_log(session, shown, ambito_id, after=after, limit=2)
            seen += [(row.occurred_at.minute, row.chain, row.seq) for row in page]
            if len(page) < 2:
                break
            after = page[-1].id
    assert seen == [(0, 0, 1), (1, 0, 2), (2, 1, 1), (3, 1, 2), (5, 0, 3)]
