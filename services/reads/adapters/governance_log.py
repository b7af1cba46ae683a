"""The governance log in PostgreSQL: a person's events (under every person id that resolves
to them now), the agreements, and recording an event with its outbox row in the caller's
transaction. The events are published to the governance topic after commit
(``services/common/outbox.py``)."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg

from projections.queries import reads as q
from services.common.serde.governance_event import (
    decode_governance_event,
    encode_governance_event,
)
from services.common.serde.sealing import (
    ERASED,
    is_sealed,
    key_ref_of,
    person_ref,
    seal,
    unseal,
)
from services.identity.key_ring import KeyRing
from services.reads.domain.governance import (
    EntryDisclosed,
    GovernanceEvent,
    PersonRecord,
    person_record,
)
from services.reads.domain.governance import agreements as fold_agreements
from services.reads.domain.visibility import Agreement


def _reason_context(event: GovernanceEvent) -> str:
    return f"governance/{event.event_id}/reason"


async def person_events(conn: asyncpg.Connection, person_id: str, key_ring: KeyRing
                        ) -> list[GovernanceEvent]:
    """The person's governance events, their free text opened (``erased`` once the
    person's key is destroyed)."""
    events = [decode_governance_event(r["body"])
              for r in await conn.fetch(q.PERSON_GOVERNANCE, person_id)]
    sealed = [e for e in events if isinstance(e.payload, EntryDisclosed)
              and is_sealed(e.payload.reason)]
    if not sealed:
        return events
    keys = await key_ring.keys(conn, {key_ref_of(e.payload.reason) for e in sealed},  # type: ignore[union-attr]
                               hold=False)
    return [_open_reason(e, keys) if e in sealed else e for e in events]


def _open_reason(event: GovernanceEvent, keys: dict[str, bytes | None]) -> GovernanceEvent:
    assert isinstance(event.payload, EntryDisclosed)
    key = keys.get(key_ref_of(event.payload.reason))
    reason = ERASED if key is None else unseal(event.payload.reason, key, _reason_context(event))
    return dataclasses.replace(event, payload=dataclasses.replace(event.payload, reason=reason))


async def load_record(conn: asyncpg.Connection, person_id: str, key_ring: KeyRing
                      ) -> PersonRecord:
    return person_record(await person_events(conn, person_id, key_ring))


async def agreement_events(conn: asyncpg.Connection) -> list[GovernanceEvent]:
    return [decode_governance_event(r["body"]) for r in await conn.fetch(q.AGREEMENT_EVENTS)]


async def load_agreements(conn: asyncpg.Connection) -> dict[str, Agreement]:
    return fold_agreements(await agreement_events(conn))


async def lock_person(conn: asyncpg.Connection, person_id: str) -> None:
    """Held to the end of the transaction: one recorder of the person's events at a time."""
    await conn.execute(q.LOCK_PERSON, person_id)


async def lock_agreements(conn: asyncpg.Connection) -> None:
    await conn.execute(q.LOCK_AGREEMENTS)


async def record(conn: asyncpg.Connection, event: GovernanceEvent, key_ring: KeyRing) -> None:
    """Append the event and its outbox row (inside the caller's transaction); free text is
    sealed with the person's data key first."""
    p = event.payload
    if isinstance(p, EntryDisclosed) and event.person_id and not is_sealed(p.reason):
        keys = await key_ring.keys_of_people(conn, [event.person_id])
        reason = seal(p.reason, keys[event.person_id], person_ref(event.person_id),
                      _reason_context(event))
        event = dataclasses.replace(event, payload=dataclasses.replace(p, reason=reason))
    body = encode_governance_event(event)
    key = event.person_id or getattr(event.payload, "agreement_id", event.event_id)
    await conn.execute(q.RECORD_GOVERNANCE_EVENT, uuid.UUID(event.event_id), event.event_type,
                       event.person_id, event.recorded_at, event.actor.agency, body, key)
