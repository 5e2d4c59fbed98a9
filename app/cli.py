"""`snodo`: serve, migrate, seed-demo, create-ambito/-organization/-user, openapi, revision."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import migrations
from app.core.embedded import EmbeddedPostgres, EmbeddedUnavailable
from app.core.enums import OrganizationKind, Role
from app.core.logging import configure_logging
from app.core.passwords import MIN_PASSWORD_LENGTH
from app.core.security import Security
from app.core.settings import Environment, Settings, describe_invalid, get_settings
from app.services.platform.bootstrap import BootstrapError

logger = logging.getLogger("snodo.cli")

OPENAPI_PATH = Path("openapi/openapi.json")
T = TypeVar("T")


class _Terminated(SystemExit):
    """SIGTERM turned into an exception, so `finally` blocks (stopping PostgreSQL) run."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(128 + signum)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The URL to use: DATABASE_URL as given, or the embedded server, started for the block."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.pgdata_dir)
    try:
        embedded.start()
        asyncio.run(embedded.ensure_database())
        yield embedded.url()
    finally:
        embedded.stop()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.core import serving
    from app.main import create_app

    with database_url(settings) as url:
        if not args.no_migrate:
            migrations.upgrade(url)
        effective = settings.model_copy(
            update={
                "database_url": url,
                "worker_in_process": settings.worker_in_process and not args.no_worker,
            }
        )
        options: dict[str, Any] = {
            "host": args.host,
            "port": args.port,
            "log_config": None,
            "access_log": False,
            "server_header": False,
            **forwarding(settings, args.forwarded_allow_ips),
        }
        if args.workers == 1:
            uvicorn.run(create_app(effective), **options)
            return 0
        # Several processes (one Python core each) build the app from the environment. Secrets
        # generated for development are written once here, not raced for by the processes.
        Security.from_settings(effective)
        os.environ["DATABASE_URL"] = url
        os.environ["SNODO_WORKER_IN_PROCESS"] = "true" if effective.worker_in_process else "false"
        app = "app.main:create_app_from_environment"
        if not serving.REUSE_PORT_BALANCES:
            uvicorn.run(app, factory=True, workers=args.workers, **options)
            return 0
        host, port = options.pop("host"), options.pop("port")
        return serving.serve_processes(app, workers=args.workers, host=host, port=port, options=options)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Deliver webhooks (as many of these as you like, beside `snodo serve --no-worker`)."""
    from app.core.db import Database
    from app.core.security import Security
    from app.services.integrations.delivery import WebhookWorker

    async def run(url: str) -> None:
        database = Database.from_url(url, settings)
        security = Security.from_settings(settings)
        worker = WebhookWorker(database, settings, security.vault, database_url=url)
        try:
            if args.once:
                await worker.drain()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await worker.run(stop)
        finally:
            await database.dispose()

    with database_url(settings) as url:
        asyncio.run(run(url))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        migrations.upgrade(url, args.revision)
    logger.info("migrated", extra={"revision": args.revision})
    return 0


def cmd_revision(args: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        migrations.upgrade(url)
        migrations.revision(url, args.message)
    return 0


def _run_in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` in one committed transaction against the configured database."""
    from app.core.db import ALL_AMBITI, Database, session_scope, set_tenant

    async def run(url: str) -> T:
        database = Database.from_url(url, settings)
        try:
            async with session_scope(database) as session:
                await set_tenant(session, ALL_AMBITI)  # the console operator works across ambiti
                return await work(session)
        finally:
            await database.dispose()

    with database_url(settings) as url:
        migrations.upgrade(url)
        return asyncio.run(run(url))


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.passwords import Passwords
    from app.services.platform.demo import seed_demo

    if settings.environment == Environment.production:
        print("seed-demo refuses to run in production", file=sys.stderr)
        return 2
    password = args.password or os.environ.get("SNODO_DEMO_PASSWORD")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        print(f"the demo password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 2
    passwords = Passwords(settings) if password else None
    created = _run_in_transaction(
        settings, lambda session: seed_demo(session=session, passwords=passwords, password=password)
    )
    print(json.dumps({"created": created}, ensure_ascii=False))
    return 0


def cmd_create_ambito(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.platform.bootstrap import create_ambito

    ambito_id = _run_in_transaction(
        settings, lambda session: create_ambito(session=session, code=args.code, name=args.name)
    )
    print(json.dumps({"ambito_id": str(ambito_id)}))
    return 0


def cmd_create_organization(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.platform.bootstrap import create_organization

    organization_id = _run_in_transaction(
        settings,
        lambda session: create_organization(
            session=session, ambito_code=args.ambito, kind=OrganizationKind(args.kind), name=args.name
        ),
    )
    print(json.dumps({"organization_id": str(organization_id)}))
    return 0


def cmd_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.passwords import Passwords
    from app.services.platform.bootstrap import create_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"the password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 2
    passwords = Passwords(settings)
    user_id = _run_in_transaction(
        settings,
        lambda session: create_user(
            session=session,
            ambito_code=args.ambito,
            organization_name=args.organization,
            email=args.email,
            full_name=args.name,
            roles=[Role(r) for r in args.role],
            password_hash=passwords.hash(password),
            is_org_admin=args.org_admin,
        ),
    )
    print(json.dumps({"user_id": str(user_id)}))
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.access.audit import verify

    result = _run_in_transaction(settings, lambda session: verify(session))
    report = {
        "rows": result.rows,
        "chains": result.chains,
        "ok": result.ok,
        "breaks": [
            {"ambito_id": str(b.ambito_id), "chain": b.chain, "seq": b.seq, "reason": b.reason}
            for b in result.breaks[:100]
        ],
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0 if result.ok else 1


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from app.main import create_app

    # The contract needs no keys: a throwaway test environment keeps it from touching ./var.
    document = render_openapi(create_app(settings.model_copy(update={"environment": Environment.test})))
    if args.check:
        if not args.output.exists() or args.output.read_text(encoding="utf-8") != document:
            print(f"{args.output} is out of date: run `snodo openapi`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def render_openapi(app: object) -> str:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snodo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (embedded PostgreSQL unless DATABASE_URL is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations at start")
    serve.add_argument(
        "--no-worker", action="store_true", help="do not deliver webhooks here (run `snodo worker`)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        choices=range(1, 33),
        metavar="N",
        help="server processes, each with its own connection pool (default 1)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="ADDRESSES",
        help="comma-separated proxy addresses (or CIDR) whose X-Forwarded-* headers are believed "
        "(default: SNODO_TRUSTED_PROXIES, else none)",
    )
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="deliver webhooks (several can run at once)")
    worker.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    worker.set_defaults(handler=cmd_worker)

    migrate = commands.add_parser("migrate", help="run database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    revision = commands.add_parser("revision", help="write a new migration from the models (developers)")
    revision.add_argument("-m", "--message", required=True)
    revision.set_defaults(handler=cmd_revision)

    seed = commands.add_parser("seed-demo", help="load the Ambito 5 Melzo demo territory (idempotent)")
    seed.add_argument(
        "--password", help="also create the demo users with this password (or set SNODO_DEMO_PASSWORD)"
    )
    seed.set_defaults(handler=cmd_seed_demo)

    ambito = commands.add_parser("create-ambito", help="create an ambito territoriale (first install)")
    ambito.add_argument("code", help="short code, e.g. MELZO")
    ambito.add_argument("name", help="e.g. 'Ambito territoriale 5 - Melzo'")
    ambito.set_defaults(handler=cmd_create_ambito)

    organization = commands.add_parser("create-organization", help="create an organization in an ambito")
    organization.add_argument("--ambito", required=True, help="ambito code")
    organization.add_argument("--kind", required=True, choices=[k.value for k in OrganizationKind])
    organization.add_argument("name")
    organization.set_defaults(handler=cmd_create_organization)

    user = commands.add_parser("create-user", help="create a user, e.g. the first platform admin")
    user.add_argument("--ambito", required=True, help="ambito code")
    user.add_argument("--organization", required=True, help="organization name")
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True, help="full name")
    user.add_argument("--role", required=True, action="append", choices=[r.value for r in Role])
    user.add_argument(
        "--org-admin", action="store_true", help="may manage the organization's users and tokens"
    )
    user.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    user.set_defaults(handler=cmd_create_user)

    audit = commands.add_parser("audit", help="access log tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check the access log's hash chains (exit 1 if broken)")
    verify.set_defaults(handler=cmd_audit_verify)

    openapi = commands.add_parser("openapi", help="write the OpenAPI contract to openapi/openapi.json")
    openapi.add_argument("--output", type=Path, default=OPENAPI_PATH)
    openapi.add_argument("--check", action="store_true", help="fail if the committed file differs")
    openapi.set_defaults(handler=cmd_openapi)
    return parser


def forwarding(settings: Settings, override: str | None) -> dict[str, Any]:
    """uvicorn's proxy options: X-Forwarded-* believed only from the trusted proxies (from anyone,
    a client could pick its own address and escape the per-address login throttling)."""
    trusted = override or ",".join(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or "127.0.0.1"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:
        lines = describe_invalid(error)
        print(f"snodo: {len(lines)} setting(s) to fix before starting:", file=sys.stderr)
        for line in lines:
            print(f"  - {line}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, as_json=settings.log_json)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code: int = args.handler(args, settings)
    except (BootstrapError, EmbeddedUnavailable) as error:
        print(f"snodo: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except _Terminated as stop:
        return int(stop.code or 0)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
