"""Erasure in an append-only log: destroy the person's data keys.

Every personal field joinedup keeps of a person is sealed with their data key: in the
archive, on the person-events topic, in the identity log and in governance events; the copy
on an agency's topic is sealed with a transit key that admission forgot once it had
re-sealed the event. Destroying the person's keys (every person id that resolves to them)
makes all of it unreadable at once, without editing any log. The rest is in one
transaction with it:

- the person index forgets their identifiers (an ``erased`` identity change, so every
  admission worker's copy in memory forgets them at its next batch; a later event under the
  same identifiers is somebody new);
- the read models that hold their identifiers in the clear drop them (the processor's
  sightings, the FHIR Tasks kept for agencies' searches), and their timeline entries say
  "Erased" (what a rebuild from the archive also gives: their events open as erased);
- the erasure itself is audited (who, why).

Timelines, rules, alerts and rebuilds go on working for everyone else: none of them reads a
sealed field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from projections.queries import erasure as sql
from projections.queries import identity as identity_sql
from services.identity.index_store import IndexStore
from services.identity.key_ring import KeyRing
from services.reads.adapters import audit_log
from services.reads.domain.audit import Caller, action_record
from services.reads.lookup import ReadRefused, current_person


@dataclass(frozen=True, slots=True)
class Erased:
    person_id: str
    person_ids: tuple[str, ...]   # every person id that resolved to them
    keys_destroyed: int
    identifiers_forgotten: int
    timeline_entries: int


async def erase(pool: asyncpg.Pool, key_ring: KeyRing, caller: Caller, person_id: str,
                reason: str) -> Erased:
    if not reason.strip():
        raise ReadRefused("invalid", "say why (--reason): an erasure is audited")
    async with pool.acquire() as conn, conn.transaction():
        person = await current_person(conn, person_id)
        if person is None:
            raise ReadRefused("not_found", "no such person")
        store = IndexStore(key_ring)
        await store.open(conn)       # the identity lock: admission waits for this erasure
        people = tuple(r["person_id"] for r in
                       await conn.fetch(identity_sql.MERGED_INTO, person))
        held = await conn.fetchval(sql.IDENTIFIERS_HELD, list(people))
        by = caller.operator or caller.reader.practitioner or "unknown"
        await store.record(conn, store.erase(person), datetime.now(UTC), actor=by,
                           reason=reason)
        destroyed = await key_ring.destroy(conn, list(people), by, reason)
        await conn.execute(sql.FORGET_SIGHTINGS, list(people))
        await conn.execute(sql.FORGET_FHIR_TASKS, list(people))
        entries = await conn.execute(sql.ERASE_TIMELINE, list(people))
        await audit_log.write(conn, action_record(
            caller, "erase", person, "subject_access", "ok",
            {"person_ids": len(people), "keys_destroyed": destroyed}))
    return Erased(person, people, destroyed, int(held or 0), int(entries.split()[-1]))
