"""Agency credentials for operators: create, list, revoke, rotate (the `joinedup agency` CLI).

Rotation issues a new token and lets the old ones keep working for a grace period (24 hours by
default), so an agency can deploy the new token without an outage; pass ``grace=timedelta(0)``
to cut the old ones off at once. Revocation is always immediate. Tokens are shown once, when
issued, and stored only as SHA-256 hashes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from projections.queries import ingest as q
from services.common.agencies import register_agency
from services.common.db import create_pool
from services.common.events import SERVICE_KINDS
from services.common.kafka import ensure_topics
from services.common.settings import AGENCY_ID, Settings
from services.ingest.auth import new_token, token_hash

ROTATION_GRACE = timedelta(hours=24)


class UnknownAgency(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class AgencySummary:
    agency_id: str
    name: str
    service_kind: str
    created_at: datetime
    disabled_at: datetime | None
    active_credentials: int
    last_used_at: datetime | None


async def create_agency(settings: Settings, agency_id: str, name: str, service_kind: str,
                        label: str | None = None) -> str:
    """Register the agency (or update its name and kind), create its topic, and issue a new
    token for it. The topic exists before the token does, so nothing is ever written to a
    topic the broker would have to invent."""
    if service_kind not in SERVICE_KINDS:
        raise ValueError(f"service kind must be one of: {', '.join(SERVICE_KINDS)}")
    if not AGENCY_ID.match(agency_id):
        raise ValueError("agency id must be 1-63 lower-case letters, digits and inner hyphens "
                         "(it names the agency's Kafka topic and principal)")
    await ensure_topics(settings, agencies=[agency_id])
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await register_agency(conn, agency_id, name, service_kind)
            return await _issue(conn, agency_id, label)
    finally:
        await pool.close()


async def list_agencies(settings: Settings) -> list[AgencySummary]:
    pool = await create_pool(settings, max_size=1)
    try:
        return [AgencySummary(**dict(row)) for row in await pool.fetch(q.LIST_AGENCIES)]
    finally:
        await pool.close()


async def revoke_credential(settings: Settings, agency_id: str,
                            credential_id: uuid.UUID | None = None) -> int:
    """Revoke at once one credential, or every working credential of the agency.

    Returns how many were revoked.
    """
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            await _require_agency(conn, agency_id)
            return len(await conn.fetch(q.REVOKE_CREDENTIALS, agency_id, credential_id))
    finally:
        await pool.close()


async def rotate_credential(settings: Settings, agency_id: str,
                            grace: timedelta = ROTATION_GRACE) -> str:
    """Issue a new token; the agency's current tokens stop working after `grace`."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await _require_agency(conn, agency_id)
            await conn.execute(q.EXPIRE_CREDENTIALS, agency_id, grace)
            return await _issue(conn, agency_id, "rotated")
    finally:
        await pool.close()


async def _issue(conn: asyncpg.Connection, agency_id: str, label: str | None) -> str:
    token = new_token()
    await conn.execute(q.INSERT_CREDENTIAL, uuid.uuid4(), agency_id, token_hash(token), label)
    return token


async def _require_agency(conn: asyncpg.Connection, agency_id: str) -> None:
    if not await conn.fetchval(q.AGENCY_EXISTS, agency_id):
        raise UnknownAgency(f"no agency {agency_id!r}; create it first")
