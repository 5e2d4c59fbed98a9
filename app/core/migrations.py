"""Alembic, driven from code: `snodo migrate`, `snodo serve`, the readiness probe and the tests."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import app

_PACKAGE_ROOT = Path(app.__file__).resolve().parent.parent


def _migrations_dir() -> Path:
    # A source checkout (editable install) keeps migrations/ beside app/; the Docker image
    # copies it into the working directory.
    for candidate in (_PACKAGE_ROOT / "migrations", Path.cwd() / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("migrations/ directory not found beside the app package or in the cwd")


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url:
        # ConfigParser interpolation would eat a literal '%' in a password.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@lru_cache
def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    """Write a new migration by comparing the models with a database at head."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def check(url: str) -> None:
    """Raise if the models and the migrations disagree (alembic autogenerate finds a diff)."""
    command.check(alembic_config(url))


async def upgrade_async(url: str, revision: str = "head") -> None:
    # env.py runs its own event loop, so Alembic gets a thread of its own.
    await asyncio.to_thread(upgrade, url, revision)
