"""Test databases: a PostgreSQL server (embedded, or TEST_DATABASE_URL) and fresh databases on it."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.engine import make_url

from app.core.settings import normalise_database_url


def asyncpg_dsn(url: str) -> str:
    """SQLAlchemy URL → libpq-style DSN that asyncpg understands."""
    return (
        make_url(normalise_database_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def with_database(url: str, name: str) -> str:
    return make_url(normalise_database_url(url)).set(database=name).render_as_string(hide_password=False)


async def create_database(server_url: str, prefix: str = "snodo_test") -> str:
    """Create an empty database on the server; return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
