"""What every read and action starts from: the person an id resolves to now, and the one
error the read side answers with."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg

from projections.queries import reads as q

Clock = Callable[[], datetime]


class ReadRefused(Exception):
    """A read or an action that cannot be carried out. ``kind`` is what the API answers
    (not_found, forbidden, conflict, invalid, and unavailable: a server did not answer, so
    retry); the message holds no personal data."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


async def current_person(conn: asyncpg.Connection, person_id: str) -> str | None:
    key = uuid_or_none(person_id)
    if key is None:
        return None
    found = await conn.fetchval(q.CURRENT_PERSON, key)
    return None if found is None else str(found)


def uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None

