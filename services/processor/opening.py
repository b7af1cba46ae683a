"""Opening sealed agency events for the read models (``services/common/serde/sealing.py``).

The archive and the person-events topic hold events sealed with their person's data key;
every flow that folds them (the live batch, catching up, a rebuild from the archive or the
log, a regroup, a dry run) opens them first, inside its transaction, with the key ring: the
keys' rows are held ``FOR SHARE`` to the end of it, so an erasure waits for the batch and
every batch after the erasure finds the key gone. An event whose key is destroyed opens as
erased (``AgencyEvent.erased``): its codes still fold, its personal fields read "erased".

Which person an event is comes from its identifiers (``services/identity/lookup.py``); an
erased event has none any more, and is the person its seal names, where that person id
resolves now.

A message can name a key that does not exist: admission forwards before its transaction
commits, and a transaction that then fails takes the person (and their key) with it; the
event is forwarded again under the person decided next. ``maybe`` gives None for such an
event (the live pipeline waits for the identity writer, asks again, then skips it);
everywhere else (the archive holds only what was applied) it is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import asyncpg

from projections.queries import identity as identity_sql
from services.common.events import AgencyEvent
from services.common.serde.sealing import SealError, key_refs, person_of_ref, unseal_event
from services.identity import lookup
from services.identity.key_ring import KeyRing
from services.processor.adapters.store import Received


class Opener:
    def __init__(self, key_ring: KeyRing | None) -> None:
        """``None``: the events are not expected to be sealed (a sealed one is an error)."""
        self._key_ring = key_ring

    async def maybe(self, conn: asyncpg.Connection, events: Sequence[AgencyEvent]
                    ) -> list[AgencyEvent | None]:
        """Each event opened; None for one sealed with a key that does not exist."""
        sealed = [key_refs(e) for e in events]   # read once an event: this is the hot path
        refs = set().union(*sealed)
        if not refs:
            return list(events)
        if self._key_ring is None:
            raise SealError("sealed events, and no key ring to open them")
        keys = await self._key_ring.keys(conn, refs)
        return [e if not mine else _open(e, mine, keys) if mine <= keys.keys() else None
                for e, mine in zip(events, sealed, strict=True)]

    async def events(self, conn: asyncpg.Connection, events: Sequence[AgencyEvent]
                     ) -> list[AgencyEvent]:
        """Each event opened; a key that does not exist is an error."""
        opened = await self.maybe(conn, events)
        if None in opened:
            raise SealError("an event sealed with a key that does not exist")
        return [e for e in opened if e is not None]

    async def received(self, conn: asyncpg.Connection, batch: Sequence[Received]
                       ) -> list[Received | None]:
        """As ``maybe``, for received messages."""
        opened = await self.maybe(conn, [r.event for r in batch])
        return [None if e is None else r if r.event is e else dataclasses.replace(r, event=e)
                for r, e in zip(batch, opened, strict=True)]


def _open(event: AgencyEvent, refs: set[str], keys: dict[str, bytes | None]) -> AgencyEvent:
    opened = unseal_event(event, keys)
    if opened.erased and not opened.person_key:
        # nothing personal is left to resolve it by: it is the person its seal names
        sealed_for = next((p for r in sorted(refs) if (p := person_of_ref(r)) is not None), "")
        opened = opened.for_person(sealed_for)
    return opened


async def people_of(conn: asyncpg.Connection, events: Sequence[AgencyEvent]
                    ) -> list[str | None]:
    """Each opened event's person id now (None: the index does not know it yet); an erased
    event is the person its seal names (where that id resolves now)."""
    live = [e for e in events if not e.erased]
    found = iter(await lookup.people_of(conn, live) if live else [])
    erased = {e.event_id: e.person_key for e in events if e.erased}
    current: dict[str, str] = {}
    if erased:
        for person in set(erased.values()):
            row = await conn.fetchrow(identity_sql.PERSON, person)
            if row is not None:
                current[person] = row["current_id"]
    return [current.get(erased[e.event_id]) if e.erased else next(found) for e in events]

