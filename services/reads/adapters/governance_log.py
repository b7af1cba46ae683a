"""The governance log in PostgreSQL: a person's events (under every person id that resolves
to them now), the agreements, and recording an event with its outbox row in the caller's
transaction. The events are published to the governance topic after commit
(``services/common/outbox.py``)."""

from __future__ import annotations

import uuid

import asyncpg

from projections.queries import reads as q
from services.common.serde.governance_event import (
    decode_governance_event,
    encode_governance_event,
)
from services.reads.domain.governance import GovernanceEvent, PersonRecord, person_record
from services.reads.domain.governance import agreements as fold_agreements
from services.reads.domain.visibility import Agreement


async def person_events(conn: asyncpg.Connection, person_id: str) -> list[GovernanceEvent]:
    return [decode_governance_event(r["body"])
            for r in await conn.fetch(q.PERSON_GOVERNANCE, person_id)]


async def load_record(conn: asyncpg.Connection, person_id: str) -> PersonRecord:
    return person_record(await person_events(conn, person_id))


async def agreement_events(conn: asyncpg.Connection) -> list[GovernanceEvent]:
    return [decode_governance_event(r["body"]) for r in await conn.fetch(q.AGREEMENT_EVENTS)]


async def load_agreements(conn: asyncpg.Connection) -> dict[str, Agreement]:
    return fold_agreements(await agreement_events(conn))


async def lock_person(conn: asyncpg.Connection, person_id: str) -> None:
    """Held to the end of the transaction: one recorder of the person's events at a time."""
    await conn.execute(q.LOCK_PERSON, person_id)


async def lock_agreements(conn: asyncpg.Connection) -> None:
    await conn.execute(q.LOCK_AGREEMENTS)


async def record(conn: asyncpg.Connection, event: GovernanceEvent) -> None:
    """Append the event and its outbox row (inside the caller's transaction)."""
    body = encode_governance_event(event)
    key = event.person_id or getattr(event.payload, "agreement_id", event.event_id)
    await conn.execute(q.RECORD_GOVERNANCE_EVENT, uuid.UUID(event.event_id), event.event_type,
                       event.person_id, event.recorded_at, event.actor.agency, body, key)
