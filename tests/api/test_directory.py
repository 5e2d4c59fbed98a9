"""Organizations and users: who manages what, and roles that fit the organization."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import OrganizationKind
from app.models import Ambito, Organization, User
from tests.support import Demo

COORDINATOR = "coordinatore@demo.snodo.it"
ADMIN = "admin@demo.snodo.it"
AS_MELZO = "as.melzo@demo.snodo.it"


async def new_user(
    demo: Demo, organization: str, *, as_: str = COORDINATOR, **body: object
) -> httpx.Response:
    payload = {
        "email": "nuovo@demo.snodo.it",
        "full_name": "Nuovo Operatore",
        "roles": ["social_worker"],
        **body,
    }
    return await demo.client.post(
        f"/api/v1/organizations/{demo.org(organization)}/users", headers=await demo.headers(as_), json=payload
    )


@pytest.fixture
async def other_ambito(session: AsyncSession) -> Organization:
    """Ambito 3 Pioltello with one organization: nothing of it exists for Melzo's people."""
    ambito = Ambito(code="PIOLTELLO", name="Ambito territoriale 3 - Pioltello")
    session.add(ambito)
    await session.flush()
    organization = Organization(
        ambito_id=ambito.id, kind=OrganizationKind.cooperativa, name="Cooperativa Arti e Mestieri"
    )
    session.add(organization)
    await session.flush()
    session.add(
        User(
            ambito_id=ambito.id,
            organization_id=organization.id,
            email="op@artiemestieri.it",
            full_name="Operatrice Pioltello",
            roles=["coop_operator"],
        )
    )
    await session.commit()
    return organization


class TestOrganizations:
    async def test_everyone_in_the_ambito_sees_its_partners(self, demo: Demo) -> None:
        response = await demo.client.get(
            "/api/v1/organizations", headers=await demo.headers("coop.solleva@demo.snodo.it")
        )
        assert response.status_code == 200
        names = {o["name"] for o in response.json()["items"]}
        assert {"Comune di Melzo", "ASST Melegnano e Martesana", "Cooperativa Sociale Archè"} <= names

    async def test_other_ambiti_do_not_exist_for_a_coordinator(
        self, demo: Demo, other_ambito: Organization
    ) -> None:
        headers = await demo.headers(COORDINATOR)
        listed = await demo.client.get("/api/v1/organizations", params={"limit": 200}, headers=headers)
        assert "Arti e Mestieri" not in listed.text
        for call in (
            demo.client.get(f"/api/v1/organizations/{other_ambito.id}", headers=headers),
            demo.client.patch(
                f"/api/v1/organizations/{other_ambito.id}", headers=headers, json={"name": "x"}
            ),
            demo.client.get(f"/api/v1/organizations/{other_ambito.id}/users", headers=headers),
        ):
            response = await call
            assert response.status_code == 404
            assert "Arti e Mestieri" not in response.text

    async def test_platform_admin_sees_every_ambito(self, demo: Demo, other_ambito: Organization) -> None:
        response = await demo.client.get(
            f"/api/v1/organizations/{other_ambito.id}", headers=await demo.headers(ADMIN)
        )
        assert response.status_code == 200

    async def test_coordinator_creates_and_updates_an_organization(self, demo: Demo) -> None:
        headers = await demo.headers(COORDINATOR)
        created = await demo.client.post(
            "/api/v1/organizations",
            headers=headers,
            json={"kind": "cooperativa", "name": "Cooperativa Sociale Germoglio"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/api/v1/organizations/{created.json()['id']}"
        assert created.json()["ambito_id"] == str(demo.ambito_id)
        renamed = await demo.client.patch(
            f"/api/v1/organizations/{created.json()['id']}", headers=headers, json={"tax_code": "01234567890"}
        )
        assert renamed.status_code == 200
        assert renamed.json()["tax_code"] == "01234567890"

    async def test_a_social_worker_cannot_configure_organizations(self, demo: Demo) -> None:
        response = await demo.client.post(
            "/api/v1/organizations",
            headers=await demo.headers(AS_MELZO),
            json={"kind": "cooperativa", "name": "X"},
        )
        assert response.status_code == 403

    async def test_duplicate_name_is_409_naming_the_field(self, demo: Demo) -> None:
        response = await demo.client.post(
            "/api/v1/organizations",
            headers=await demo.headers(COORDINATOR),
            json={"kind": "cooperativa", "name": "Cooperativa Sociale Solleva"},
        )
        assert response.status_code == 409
        assert response.json()["errors"][0]["field"] == "body.name"

    async def test_a_comune_organization_needs_a_comune_of_the_ambito(self, demo: Demo) -> None:
        response = await demo.client.post(
            "/api/v1/organizations",
            headers=await demo.headers(COORDINATOR),
            json={"kind": "comune", "name": "Comune X"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.comune_id"


class TestUsers:
    async def test_coordinator_creates_a_user_who_can_log_in(self, demo: Demo) -> None:
        response = await new_user(demo, "Comune di Settala", password="una-password-lunga")
        assert response.status_code == 201, response.text
        assert "password" not in response.text
        assert (await demo.login("nuovo@demo.snodo.it", "una-password-lunga")).status_code == 200

    @pytest.mark.parametrize(
        ("organization", "roles"),
        [
            ("Cooperativa Sociale Solleva", ["social_worker"]),
            ("Comune di Melzo", ["health_operator"]),
            ("AFOL Metropolitana", ["coop_operator"]),
            ("ASST Melegnano e Martesana", ["coordinator"]),
            ("Comune di Melzo", ["platform_admin"]),
        ],
    )
    async def test_roles_must_fit_the_organization_kind(
        self, demo: Demo, organization: str, roles: list[str]
    ) -> None:
        response = await new_user(demo, organization, as_=ADMIN, roles=roles)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.roles"
        assert response.json()["errors"][0]["code"] == "role_not_allowed_for_organization"

    async def test_roles_without_case_content_are_not_combined(self, demo: Demo) -> None:
        response = await new_user(demo, "Ufficio di Piano - Ambito 5 Melzo", roles=["dpo", "social_worker"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "role_exclusive"

    async def test_unknown_role_is_422(self, demo: Demo) -> None:
        response = await new_user(demo, "Comune di Melzo", roles=["superuser"])
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.roles.0"

    async def test_only_a_platform_admin_grants_platform_admin(self, demo: Demo) -> None:
        response = await new_user(demo, "Ufficio di Piano - Ambito 5 Melzo", roles=["platform_admin"])
        assert response.status_code == 403

    async def test_duplicate_email_in_any_case_is_409(self, demo: Demo) -> None:
        response = await new_user(demo, "Comune di Melzo", email="AS.Melzo@demo.snodo.it")
        assert response.status_code == 409
        assert response.json()["errors"][0]["field"] == "body.email"

    async def test_bad_fields_are_named(self, demo: Demo) -> None:
        response = await new_user(
            demo,
            "Comune di Melzo",
            email="not-an-email",
            full_name="x" * 201,
            password="short",
            is_admin=True,
        )
        assert response.status_code == 422
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"body.email", "body.full_name", "body.password", "body.is_admin"}

    async def test_social_worker_cannot_manage_its_colleagues(self, demo: Demo) -> None:
        headers = await demo.headers(AS_MELZO)
        own_org = await demo.client.get(
            f"/api/v1/organizations/{demo.org('Comune di Melzo')}/users", headers=headers
        )
        assert own_org.status_code == 403
        other_org = await demo.client.get(
            f"/api/v1/organizations/{demo.org('Comune di Inzago')}/users", headers=headers
        )
        assert other_org.status_code == 404
        colleague = await demo.client.get(
            f"/api/v1/users/{demo.users['as.inzago@demo.snodo.it']}", headers=headers
        )
        assert colleague.status_code == 404

    async def test_a_user_reads_itself_but_cannot_raise_its_own_roles(self, demo: Demo) -> None:
        headers = await demo.headers(AS_MELZO)
        me = await demo.client.get(f"/api/v1/users/{demo.users[AS_MELZO]}", headers=headers)
        assert me.status_code == 200
        assert me.json()["roles"] == ["social_worker"]
        raised = await demo.client.patch(
            f"/api/v1/users/{demo.users[AS_MELZO]}", headers=headers, json={"roles": ["coordinator"]}
        )
        assert raised.status_code == 403

    async def test_organization_admin_grants_operational_roles_only(self, demo: Demo) -> None:
        coordinator = await demo.headers(COORDINATOR)
        await demo.client.patch(
            f"/api/v1/users/{demo.users[AS_MELZO]}", headers=coordinator, json={"is_org_admin": True}
        )
        ok = await new_user(demo, "Comune di Melzo", as_=AS_MELZO, roles=["home_care"])
        assert ok.status_code == 201
        refused = await new_user(
            demo, "Comune di Melzo", as_=AS_MELZO, email="dpo2@demo.snodo.it", roles=["dpo"]
        )
        assert refused.status_code == 403
        elsewhere = await new_user(demo, "Comune di Inzago", as_=AS_MELZO, email="x2@demo.snodo.it")
        assert elsewhere.status_code == 404

    async def test_users_are_listed_with_a_cursor(self, demo: Demo) -> None:
        headers = await demo.headers(COORDINATOR)
        for i in range(3):
            assert (await new_user(demo, "Comune di Vignate", email=f"op{i}@vignate.it")).status_code == 201
        url = f"/api/v1/organizations/{demo.org('Comune di Vignate')}/users"
        first = (await demo.client.get(url, params={"limit": 2}, headers=headers)).json()
        assert len(first["items"]) == 2
        assert first["next_cursor"]
        second = (
            await demo.client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers)
        ).json()
        assert [u["email"] for u in first["items"] + second["items"]] == [
            "op0@vignate.it",
            "op1@vignate.it",
            "op2@vignate.it",
        ]
        assert second["next_cursor"] is None

    async def test_a_bad_cursor_is_422(self, demo: Demo) -> None:
        response = await demo.client.get(
            f"/api/v1/organizations/{demo.org('Comune di Vignate')}/users",
            params={"cursor": "not*a*cursor"},
            headers=await demo.headers(COORDINATOR),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.cursor"
