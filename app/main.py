"""create_app(): routers, middleware, error handlers — nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from app import __doc__ as app_doc
from app.api import assessment, dossiers, intake, integrations, platform, pools
from app.api.identity import auth, directory
from app.core.clock import Clock, ClockMiddleware
from app.core.db import Database
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from app.core.problems import PROBLEM_MEDIA_TYPE
from app.core.security import Security
from app.core.settings import Environment, Settings, get_settings
from app.services.integrations.delivery import WebhookWorker

# Every router of the app, in one list: tests walk it to check that each route is protected.
ROUTERS: tuple[APIRouter, ...] = (
    platform.router,
    auth.router,
    directory.organizations,
    directory.users,
    directory.api_tokens,
    intake.router,
    dossiers.router,
    dossiers.emergency,
    pools.pools_router,
    pools.routing_router,
    pools.meetings_router,
    assessment.router,
    integrations.router,
    integrations.integrations,
)


def operation_id(route: APIRoute) -> str:
    """Stable, readable operation ids (`tag-name`) for generated clients."""
    tag = str(route.tags[0]) if route.tags else "default"
    return f"{tag}-{route.name.replace('_', '-')}"


def create_app(
    settings: Settings | None = None, *, database: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        worker: asyncio.Task[None] | None = None
        stop = asyncio.Event()
        if database is None:
            if not settings.database_url:
                raise RuntimeError("DATABASE_URL is not set: run `snodo serve` for the embedded database")
            app.state.database = Database.from_url(settings.database_url, settings)
            if settings.worker_in_process:
                webhook_worker = WebhookWorker(
                    app.state.database,
                    settings,
                    app.state.security.vault,
                    clock=app.state.security.clock,
                    database_url=settings.database_url,
                )
                worker = asyncio.create_task(webhook_worker.run(stop), name="webhook-worker")
        if owned:
            # What is built by now (modules, models, the app, the pool) lives as long as the
            # process: frozen out of the collector's sight, a full collection no longer walks it.
            # Measured in process at 1M (docs/performance.md): a full collection 116 -> 3 ms, one
            # every ~700 worklist pages before, every ~130 after; CPU per page 4.3 -> 3.7-3.9 ms.
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(worker, timeout=settings.webhook_timeout_s + 5)
            if owned:
                await app.state.database.dispose()

    app = FastAPI(
        title="snodo",
        version="0.1.0",
        summary=app_doc,
        description=(
            "REST API of snodo, the shared record of the pool territoriali. "
            "Errors are RFC 9457 `application/problem+json`; send `Accept-Language: it` for Italian messages."
        ),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    if database is not None:
        app.state.database = database
    app.state.settings = settings
    app.state.security = Security.from_settings(settings, clock=clock)

    install_error_handlers(app)
    # Added inside-out: the last one added is the outermost.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ClockMiddleware, clock=app.state.security.clock)
    app.add_middleware(RequestContextMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "Idempotency-Key",
                "X-Request-ID",
                "Accept-Language",
            ],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.environment == Environment.production)

    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents its own 422 body; ours is problem+json, so say so in the contract."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    from app.core.problems import Problem

    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in problem_schema.pop("$defs", {}).items():
        components[name] = definition
    components["Problem"] = problem_schema
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if status.startswith(("4", "5")):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
            responses.setdefault(
                "default",
                {"description": "Problem", "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}},
            )
    app.openapi_schema = schema
    return schema


def create_app_from_environment() -> FastAPI:
    """The app of one of several server processes (`snodo serve --workers N`): settings from the
    environment the parent prepared, logging as the parent's."""
    settings = get_settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    return create_app(settings)
