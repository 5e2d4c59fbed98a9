"""Readiness: the database answers and its schema is at the migration head."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from app.core.db import Database, migration_revisions
from app.core.migrations import head_revisions
from app.core.problems import ServiceUnavailable

logger = logging.getLogger("snodo.health")

READINESS_TIMEOUT_S = 2.0


async def check_readiness(*, database: Database) -> list[str]:
    """Return the schema's revisions, or raise ServiceUnavailable saying what is wrong."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S), database.sessionmaker() as session:
            current = await migration_revisions(session)
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        logger.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        raise ServiceUnavailable("The database does not answer.") from None
    expected = head_revisions()
    if current != expected:
        raise ServiceUnavailable(
            f"The database is at migration {sorted(current) or 'none'}, expected {sorted(expected)}."
        )
    return sorted(current)
