"""The demo territory: Ambito 5 Melzo as its Piano di Zona 2021-23 describes it.

Idempotent by natural keys (ambito code, ISTAT code, organization name): a second run
creates nothing and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import NeedArea, OrganizationKind, PoolArea, PoolRole, Role
from app.core.passwords import Passwords
from app.models import Ambito, Comune, Organization, Pool, PoolComune, PoolMember, RoutingRule, User
from app.models.base import new_id

AMBITO_CODE = "MELZO"
AMBITO_NAME = "Ambito territoriale 5 - Melzo"


@dataclass(frozen=True)
class DemoComune:
    name: str
    istat_code: str
    cadastral_code: str


# ISTAT and cadastral (Belfiore) codes, checked against two public copies of the ISTAT list.
COMUNI: tuple[DemoComune, ...] = (
    DemoComune("Cassano d'Adda", "015059", "C003"),
    DemoComune("Inzago", "015114", "E317"),
    DemoComune("Liscate", "015122", "E610"),
    DemoComune("Melzo", "015142", "F119"),
    DemoComune("Pozzuolo Martesana", "015178", "G965"),
    DemoComune("Settala", "015210", "I696"),
    DemoComune("Truccazzano", "015224", "L454"),
    DemoComune("Vignate", "015237", "L883"),
)

# (name, kind, comune the organization sits in, if any)
ORGANIZATIONS: tuple[tuple[str, OrganizationKind, str | None], ...] = (
    ("Ufficio di Piano - Ambito 5 Melzo", OrganizationKind.ufficio_di_piano, "Melzo"),
    ("ASST Melegnano e Martesana", OrganizationKind.asst, None),
    ("ATS Città Metropolitana di Milano", OrganizationKind.ats, None),
    ("AFOL Metropolitana", OrganizationKind.afol, None),
    ("Cooperativa Sociale Solleva", OrganizationKind.cooperativa, None),
    ("Cooperativa Sociale Archè", OrganizationKind.cooperativa, None),
    ("Cooperativa Sociale Spazio Giovani", OrganizationKind.cooperativa, None),
    ("Cooperativa Sociale Milagro", OrganizationKind.cooperativa, None),
    ("Cooperativa Sociale Dialogica", OrganizationKind.cooperativa, None),
    ("Cooperativa Sociale COGESS", OrganizationKind.cooperativa, None),
    ("Cooperativa Sociale Punto d'Incontro", OrganizationKind.cooperativa, None),
    ("Fondazione Somaschi", OrganizationKind.associazione, None),
    ("ACLI Circolo Ghidini e Bonomi APS", OrganizationKind.associazione, "Cassano d'Adda"),
)


# The demo logins (issue #3): demos and integration checks rely on exactly these.
DEMO_USERS: tuple[tuple[str, str, Role, str], ...] = (
    (
        "admin@demo.snodo.it",
        "Amministratore piattaforma",
        Role.platform_admin,
        "Ufficio di Piano - Ambito 5 Melzo",
    ),
    ("coordinatore@demo.snodo.it", "Chiara Colombo", Role.coordinator, "Ufficio di Piano - Ambito 5 Melzo"),
    ("as.melzo@demo.snodo.it", "Laura Brambilla", Role.social_worker, "Comune di Melzo"),
    ("as.inzago@demo.snodo.it", "Paolo Ferrari", Role.social_worker, "Comune di Inzago"),
    ("sert@demo.snodo.it", "Marco Galli", Role.health_operator, "ASST Melegnano e Martesana"),
    ("afol@demo.snodo.it", "Giulia Fontana", Role.employment_operator, "AFOL Metropolitana"),
    ("coop.solleva@demo.snodo.it", "Sara Villa", Role.coop_operator, "Cooperativa Sociale Solleva"),
    ("coop.arche@demo.snodo.it", "Davide Rossi", Role.coop_operator, "Cooperativa Sociale Archè"),
    ("dpo@demo.snodo.it", "Responsabile protezione dati", Role.dpo, "Ufficio di Piano - Ambito 5 Melzo"),
)


NEAR_MELZO = ("Melzo", "Liscate", "Pozzuolo Martesana", "Settala", "Truccazzano", "Vignate")
ALL = tuple(c.name for c in COMUNI)

# (pool, area, territory, [(member organization, role)])
POOLS: tuple[tuple[str, PoolArea, tuple[str, ...], tuple[tuple[str, PoolRole], ...]], ...] = (
    (
        "Pool lavoro - Melzo",
        PoolArea.lavoro,
        NEAR_MELZO,
        (
            ("Comune di Melzo", PoolRole.referente_comunale),
            ("AFOL Metropolitana", PoolRole.referente_afol),
            ("Cooperativa Sociale Solleva", PoolRole.referente_cooperativa),
        ),
    ),
    (
        "Pool lavoro - Cassano d'Adda e Inzago",
        PoolArea.lavoro,
        ("Cassano d'Adda", "Inzago"),
        (
            ("Comune di Cassano d'Adda", PoolRole.referente_comunale),
            ("Comune di Inzago", PoolRole.referente_comunale),
            ("AFOL Metropolitana", PoolRole.referente_afol),
            ("Cooperativa Sociale Archè", PoolRole.referente_cooperativa),
        ),
    ),
    (
        "Pool povertà",
        PoolArea.poverta,
        ALL,
        (
            ("Comune di Melzo", PoolRole.referente_comunale),
            ("AFOL Metropolitana", PoolRole.referente_afol),
            ("Fondazione Somaschi", PoolRole.referente_cooperativa),
            ("Cooperativa Sociale Punto d'Incontro", PoolRole.referente_cooperativa),
        ),
    ),
    (
        "Pool domiciliarità (SID)",
        PoolArea.domiciliarita,
        ALL,
        (
            ("Comune di Melzo", PoolRole.referente_comunale),
            ("Cooperativa Sociale COGESS", PoolRole.referente_cooperativa),
            ("ASST Melegnano e Martesana", PoolRole.referente_asst),
        ),
    ),
    (
        "Gruppo Minori",
        PoolArea.minori,
        ALL,
        (
            ("Comune di Melzo", PoolRole.referente_comunale),
            ("ASST Melegnano e Martesana", PoolRole.referente_asst),
        ),
    ),
    (
        "Rete antiviolenza VIOLA",
        PoolArea.violenza,
        ALL,
        (
            ("Comune di Melzo", PoolRole.referente_comunale),
            ("ASST Melegnano e Martesana", PoolRole.referente_asst),
        ),
    ),
)

# (rule, priority, comuni (empty: any), need areas, target pool)
RULES: tuple[tuple[str, int, tuple[str, ...], tuple[NeedArea, ...], str], ...] = (
    ("Violenza: rete VIOLA", 5, (), (NeedArea.violenza,), "Rete antiviolenza VIOLA"),
    ("Lavoro: Melzo e comuni vicini", 10, NEAR_MELZO, (NeedArea.lavoro,), "Pool lavoro - Melzo"),
    (
        "Lavoro: Cassano d'Adda e Inzago",
        10,
        ("Cassano d'Adda", "Inzago"),
        (NeedArea.lavoro,),
        "Pool lavoro - Cassano d'Adda e Inzago",
    ),
    ("Povertà e casa", 20, (), (NeedArea.poverta, NeedArea.casa), "Pool povertà"),
    (
        "Anziani e disabilità: domiciliarità",
        30,
        (),
        (NeedArea.anziani, NeedArea.disabilita),
        "Pool domiciliarità (SID)",
    ),
    ("Minori", 40, (), (NeedArea.minori,), "Gruppo Minori"),
)


async def _seed_pools(
    session: AsyncSession, ambito_id: uuid.UUID, comune_ids: dict[str, uuid.UUID], now: datetime
) -> int:
    organization_ids = dict(
        (
            await session.execute(
                select(Organization.name, Organization.id).where(Organization.ambito_id == ambito_id)
            )
        ).all()
    )
    existing = dict(
        (await session.execute(select(Pool.name, Pool.id).where(Pool.ambito_id == ambito_id))).all()
    )
    created = 0
    for name, area, territory, members in POOLS:
        if name in existing:
            continue
        pool = Pool(
            ambito_id=ambito_id, name=name, area=area, active_from=date(now.year, 1, 1), response_days=5
        )
        session.add(pool)
        await session.flush()
        existing[name] = pool.id
        created += 1
        session.add_all(
            PoolComune(pool_id=pool.id, comune_id=comune_ids[c], ambito_id=ambito_id) for c in territory
        )
        session.add_all(
            PoolMember(
                ambito_id=ambito_id,
                pool_id=pool.id,
                organization_id=organization_ids[organization],
                role=role,
                added_at=now,
            )
            for organization, role in members
        )
    rules = set(
        (await session.scalars(select(RoutingRule.name).where(RoutingRule.ambito_id == ambito_id))).all()
    )
    for name, priority, comuni, areas, target in RULES:
        if name not in rules:
            session.add(
                RoutingRule(
                    ambito_id=ambito_id,
                    name=name,
                    priority=priority,
                    comune_ids=[comune_ids[c] for c in comuni],
                    need_areas=[a.value for a in areas],
                    target_pool_ids=[existing[target]],
                )
            )
    await session.flush()
    return created


async def _insert_missing(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], key: list[str]
) -> int:
    if not rows:
        return 0
    statement = insert(model).values(rows).on_conflict_do_nothing(index_elements=key).returning(model.id)
    return len((await session.scalars(statement)).all())


async def seed_demo(
    *,
    session: AsyncSession,
    passwords: Passwords | None = None,
    password: str | None = None,
    pools: bool = True,
    now: datetime | None = None,
) -> dict[str, int]:
    """Create what is missing of the demo territory (its pools and routing rules unless told
    otherwise, and, given a password, its demo users); return how many rows of each were
    created. Existing rows are left as they are."""
    now = now or datetime.now(UTC)
    created = {"ambito": 0, "comune": 0, "organization": 0, "user": 0, "pool": 0}
    created["ambito"] = await _insert_missing(
        session, Ambito, [{"id": new_id(), "code": AMBITO_CODE, "name": AMBITO_NAME}], ["code"]
    )
    ambito_id = await session.scalar(select(Ambito.id).where(Ambito.code == AMBITO_CODE))
    assert ambito_id is not None

    created["comune"] = await _insert_missing(
        session,
        Comune,
        [
            {
                "id": new_id(),
                "ambito_id": ambito_id,
                "istat_code": c.istat_code,
                "cadastral_code": c.cadastral_code,
                "name": c.name,
                "province": "MI",
            }
            for c in COMUNI
        ],
        ["istat_code"],
    )
    comune_ids: dict[str, uuid.UUID] = {
        name: id_
        for name, id_ in (
            await session.execute(select(Comune.name, Comune.id).where(Comune.ambito_id == ambito_id))
        )
    }

    organizations = [
        {
            "id": new_id(),
            "ambito_id": ambito_id,
            "kind": OrganizationKind.comune,
            "name": f"Comune di {c.name}",
            "comune_id": comune_ids[c.name],
        }
        for c in COMUNI
    ] + [
        {
            "id": new_id(),
            "ambito_id": ambito_id,
            "kind": kind,
            "name": name,
            "comune_id": comune_ids[comune] if comune else None,
        }
        for name, kind, comune in ORGANIZATIONS
    ]
    created["organization"] = await _insert_missing(
        session, Organization, organizations, ["ambito_id", "name"]
    )
    if password is not None:
        assert passwords is not None
        created["user"] = await _seed_users(session, ambito_id, passwords.hash(password))
    if pools:
        created["pool"] = await _seed_pools(session, ambito_id, comune_ids, now)
    await session.flush()
    return created


async def _seed_users(session: AsyncSession, ambito_id: uuid.UUID, password_hash: str) -> int:
    organization_ids = dict(
        (
            await session.execute(
                select(Organization.name, Organization.id).where(Organization.ambito_id == ambito_id)
            )
        ).all()
    )
    existing = set((await session.scalars(select(func.lower(User.email)))).all())
    created = 0
    for email, full_name, role, organization in DEMO_USERS:
        if email in existing:
            continue
        session.add(
            User(
                ambito_id=ambito_id,
                organization_id=organization_ids[organization],
                email=email,
                full_name=full_name,
                roles=[role.value],
                is_org_admin=role in (Role.platform_admin, Role.coordinator),
                password_hash=password_hash,
            )
        )
        created += 1
    return created
