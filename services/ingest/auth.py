"""Agency credentials: random bearer tokens, stored only as SHA-256 hashes.

A token is 32 random bytes (``secrets.token_urlsafe``), so a fast hash is enough: there is
nothing to brute-force that a slow password hash would protect. The ``jdu_`` prefix lets
secret scanners recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from projections.queries import ingest as q
from services.common.db import BoundedPool
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


async def authenticate(pool: BoundedPool, token: str | None) -> Principal | None:
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


class CredentialCache:
    """Remembers accepted tokens for a few seconds, so a request skips a database round trip.

    The price: a revoked token keeps working on this gateway for up to `ttl` seconds. Unknown
    tokens are never cached, so a new token works at once.
    """

    def __init__(self, pool: BoundedPool, ttl: float = 10.0, size: int = 1000) -> None:
        self._pool = pool
        self._ttl = ttl
        self._size = size
        self._known: dict[str, tuple[float, Principal]] = {}

    async def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        key = token_hash(token)
        cached = self._known.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        found = await authenticate(self._pool, token)
        self._known.pop(key, None)
        if found is not None:
            if len(self._known) >= self._size:  # drop the oldest entry
                self._known.pop(next(iter(self._known)))
            self._known[key] = (time.monotonic(), found)
        return found


def may_publish(principal: Principal, event: AgencyEvent) -> bool:
    """An agency publishes only as itself."""
    return event.source.agency == principal.agency_id
