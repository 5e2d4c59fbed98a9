"""Every error is application/problem+json with the right status, and none leaks internals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep
from app.core.problems import ProblemError, ValidationFailed
from app.models import Ambito

PROBLEM = "application/problem+json"


class Echo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=10)
    age: int


probe = APIRouter(prefix="/__probe__", tags=["probe"])


@probe.post("/echo")
async def echo(body: Echo) -> Echo:
    return body


class _KeptError(ProblemError):
    status = 400
    keeps_writes = True


@probe.post("/write-then-fail")
async def write_then_fail(session: SessionDep, keep: bool = False) -> None:
    session.add(Ambito(code="HALF", name="written before the error"))
    await session.flush()
    raise _KeptError("kept") if keep else ValidationFailed("nothing may stay")


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("password=hunter2 SELECT * FROM person WHERE fiscal_code = 'RSSMRA80A01F205X'")


@pytest.fixture
async def probe_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    app.include_router(probe)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/does-not-exist"), 404)
    assert body["instance"] == "/api/v1/does-not-exist"


async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


async def test_malformed_json_is_400_problem(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/__probe__/echo", content=b'{"name": "Anna", "age": ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert body["type"].endswith("/malformed-body")


async def test_validation_error_names_every_wrong_field(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/__probe__/echo", json={"name": "x" * 11, "role": "admin"})
    body = assert_problem(response, 422)
    fields = {(e["field"], e["code"]) for e in body["errors"]}  # type: ignore[union-attr]
    assert fields == {
        ("body.name", "string_too_long"),
        ("body.age", "missing"),
        ("body.role", "extra_forbidden"),
    }


async def test_validation_messages_in_italian_when_asked(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/__probe__/echo", json={"name": "Anna"}, headers={"accept-language": "it-IT,it;q=0.9,en;q=0.5"}
    )
    body = assert_problem(response, 422)
    assert body["title"] == "Alcuni campi non sono validi"
    assert body["errors"] == [{"field": "body.age", "message": "Campo obbligatorio", "code": "missing"}]


async def test_english_is_the_default(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nope", headers={"accept-language": "de-DE"}), 404)
    assert body["title"] == "Not Found"


async def test_declared_oversize_body_is_413(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/__probe__/echo", content=b"x" * (1024 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_streamed_oversize_body_is_413(probe_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65536  # 1.25 MiB in all, with no Content-Length

    response = await probe_client.post(
        "/__probe__/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_bogus_content_length_is_400(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/__probe__/echo", content=b"{}", headers={"content-type": "application/json", "content-length": "2x"}
    )
    assert_problem(response, 400)


async def test_internal_error_is_500_problem_without_internals(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.get("/__probe__/boom")
    body = assert_problem(response, 500)
    text = response.text
    for secret in ("hunter2", "SELECT", "RSSMRA", "Traceback", "RuntimeError", "test_errors.py"):
        assert secret not in text
    assert body["detail"]
    assert "request_id" in str(body["detail"])
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "spa-7f3a.42"})
    assert response.headers["x-request-id"] == "spa-7f3a.42"


async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-request-id": "a b\tc" + "x" * 200})
    assert response.headers["x-request-id"] != "a b\tc" + "x" * 200
    assert len(response.headers["x-request-id"]) == 32


async def test_api_responses_are_never_cached(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/anything")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_an_error_leaves_nothing_half_written(
    probe_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    assert (await probe_client.post("/__probe__/write-then-fail")).status_code == 422
    assert await session.scalar(select(Ambito).where(Ambito.code == "HALF")) is None


async def test_errors_that_record_a_failure_keep_the_record(
    probe_client: httpx.AsyncClient, session: AsyncSession
) -> None:
    assert (await probe_client.post("/__probe__/write-then-fail", params={"keep": True})).status_code == 400
    assert (
        await session.scalar(select(Ambito.name).where(Ambito.code == "HALF")) == "written before the error"
    )
