"""Keyset pagination: an opaque cursor names the last row seen; no OFFSET, ever."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from app.core.problems import field_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: uuid.UUID | None = None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise field_error("query.cursor", "Invalid cursor", "cursor_invalid") from None
