"""Probes for orchestrators: alive, and ready to serve (database reachable and migrated)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.api.deps import get_database
from app.schemas.platform import Liveness, Readiness
from app.services.platform.health import check_readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/readyz",
    summary="The database answers and is at the migration head",
    responses={503: {"description": "Database unreachable or not migrated"}},
)
async def readiness(request: Request) -> Readiness:
    return Readiness(migration=await check_readiness(database=get_database(request)))


# HEAD as well as GET: uptime monitors and load balancers often probe with HEAD (405 before). The
# same answer, its body dropped by the server; kept out of the OpenAPI contract (GET documents it).
@router.head("/healthz", include_in_schema=False)
async def liveness_head() -> Liveness:
    return await liveness()


@router.head("/readyz", include_in_schema=False)
async def readiness_head(request: Request) -> Readiness:
    return await readiness(request)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """The bare address leads to the interactive API documentation."""
    return RedirectResponse("/docs", status_code=307)
