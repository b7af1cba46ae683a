"""Agency credentials: random bearer tokens, stored only as SHA-256 hashes.

A token is 32 random bytes (``secrets.token_urlsafe``), so a fast hash is enough: there is
nothing to brute-force that a slow password hash would protect. The ``jdu_`` prefix lets
secret scanners recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from projections.queries import ingest as q
from services.common.events import AgencyEvent

TOKEN_PREFIX = "jdu_"


@dataclass(frozen=True, slots=True)
class Principal:
    """The agency a request speaks for, and the credential that proved it."""

    agency_id: str
    credential_id: UUID


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(pool: asyncpg.Pool, token: str | None) -> Principal | None:
    """The principal for a working token; None for a missing, unknown or revoked one."""
    if not token or len(token) > 200:
        return None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(q.FIND_CREDENTIAL, token_hash(token))
        if row is None:
            return None
        last_used = row["last_used_at"]
        if last_used is None or datetime.now(UTC) - last_used > timedelta(minutes=1):
            await conn.execute(q.TOUCH_CREDENTIAL, row["credential_id"])
    return Principal(row["agency_id"], row["credential_id"])


def may_publish(principal: Principal, event: AgencyEvent) -> bool:
    """An agency publishes only as itself."""
    return event.source.agency == principal.agency_id
