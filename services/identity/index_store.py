"""The person index in memory, kept in step with its change log in PostgreSQL.

The matching rule runs on the in-memory ``PersonIndex`` (microseconds an event); the
PostgreSQL change log (``identity_change``) is what makes it durable and shared. A writer
(admission resolving a batch, an operator's link) works inside its own transaction:

1. ``open`` takes the identity lock (held to the end of the transaction, so writers of one
   index take turns) and applies whatever other writers recorded since this copy last read;
2. it decides (``resolve``, ``link``, ``unlink``, ``split``), changing the copy in memory;
3. ``record`` appends the changes to the log and writes the lookups derived from them
   (``person_index``, ``person_index_identifier``) in the same transaction.

If the transaction does not commit, the copy in memory holds decisions that never happened:
``rolled_back`` marks it stale, and the next ``open`` rebuilds it from the log.

Identifier values in the log are sealed with the data key of the person holding them
(``sealing.py``; a person's key is made in the transaction that first identifies them).
The copy in memory holds them open; read back, those of an erased person (key destroyed)
cannot be opened and are left out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from projections.queries import identity as sql
from services.common.events import AgencyEvent, Identifier, IdentityNotice
from services.common.serde.sealing import person_ref
from services.identity import domain
from services.identity.codec import (
    IdentityEvent,
    decode_identity_event,
    encode_identity_event,
    kind_of,
)
from services.identity.domain import (
    Attached,
    Change,
    Erased,
    Identified,
    Merged,
    PersonIndex,
    Separated,
)
from services.identity.key_ring import KeyRing
from services.identity.sealing import (
    holder,
    key_refs,
    open_identity_event,
    seal_identity_event,
)


def random_person_id() -> str:
    """A person id: random, so nothing personal can be recomputed into it."""
    return str(uuid.uuid4())


class IndexStore:
    def __init__(self, key_ring: KeyRing) -> None:
        self.key_ring = key_ring
        self.index = PersonIndex()
        self._seq = 0
        self._stale = False

    async def open(self, conn: asyncpg.Connection) -> None:
        """Inside a transaction: take the identity lock and catch up with the log."""
        await conn.execute(sql.LOCK)
        if self._stale:
            self.index, self._seq, self._stale = PersonIndex(), 0, False
        rows = await conn.fetch(sql.CHANGES_AFTER, self._seq)
        if not rows:
            return
        events = [decode_identity_event(row["body"]) for row in rows]
        keys = await self.key_ring.keys(conn, {r for e in events for r in key_refs(e)})
        for row, event in zip(rows, events, strict=True):
            change = open_identity_event(event, keys).change
            if isinstance(change, Erased):  # another process erased them: keys are gone
                self.key_ring.forget(change.person_ids)
            domain.apply_change(self.index, change)
            self._seq = row["seq"]

    def rolled_back(self) -> None:
        self._stale = True

    # --- decisions (on the copy in memory; recorded by `record`) ------------------------------

    def resolve(self, identifiers: Sequence[Identifier]) -> tuple[str, list[Change]]:
        return domain.resolve(self.index, identifiers, random_person_id)

    def admit(self, event: AgencyEvent) -> tuple[str, list[Change]]:
        """The person an admitted event is, by the matching rule; for an agency's notice
        about its own records, also what it asserts (``identity.merged``: a link of the
        record the event names with the other one; ``identity.unmerged``: an unlink)."""
        agency = event.source.agency
        identifiers = domain.indexed(event.identifiers, agency)
        person, changes = self.resolve(identifiers)
        notice = event.payload
        if not isinstance(notice, IdentityNotice):
            return person, changes
        [other] = domain.indexed([Identifier(notice.other_scheme, notice.other_value)], agency)
        mine = next(i for i in domain.strongest_first(identifiers)
                    if self.index.person_of(i) == person)
        decide = self.link if event.action == "merged" else self.unlink
        changes += decide(mine, other, agency)
        return self.index.person_of(mine) or person, changes

    def link(self, a: Identifier, b: Identifier, asserted_by: str) -> list[Change]:
        return domain.link(self.index, a, b, asserted_by, random_person_id)

    def unlink(self, a: Identifier, b: Identifier, asserted_by: str) -> list[Change]:
        return domain.unlink(self.index, a, b, asserted_by)

    def split(self, identifiers: Sequence[Identifier]) -> list[Change]:
        return domain.split(self.index, identifiers, random_person_id)

    def erase(self, person: str) -> list[Change]:
        return domain.erase(self.index, person)

    # --- the log and its lookups ---------------------------------------------------------------

    async def record(self, conn: asyncpg.Connection, changes: Sequence[Change],
                     at: datetime, actor: str | None = None, reason: str | None = None
                     ) -> list[IdentityEvent]:
        """Append ``changes`` (already applied in memory) to the log, with the lookups; an
        operator's come with who made them and why."""
        if not changes:
            return []
        events = [IdentityEvent(str(uuid.uuid4()), at, c) for c in changes]
        holders = list(dict.fromkeys(h for e in events if (h := holder(e)) is not None))
        await self.key_ring.create(conn, [c.person_id for c in changes
                                          if isinstance(c, Identified | Separated)])
        # the identity lock is held: no erasure can run meanwhile
        keys = {person_ref(p): k for p, k in
                (await self.key_ring.keys_of_people(conn, holders)).items()}
        events = [seal_identity_event(e, keys) for e in events]
        rows = await conn.fetch(
            sql.RECORD_CHANGES, [e.change_id for e in events],
            [kind_of(e.change) for e in events], [at] * len(events),
            [_asserted_by(e.change) for e in events], actor, reason,
            [",".join(concerns(e.change)) for e in events],
            [encode_identity_event(e) for e in events])
        self._seq = max(self._seq, *(r["seq"] for r in rows))
        people, identifiers = self._touched(changes)
        if people:
            await conn.execute(sql.UPSERT_PEOPLE, people,
                               [self.index.current(p) for p in people], [at] * len(people))
        if identifiers:
            await conn.execute(sql.UPSERT_IDENTIFIERS, [i.scheme for i in identifiers],
                               [i.value for i in identifiers],
                               [self.index.owner[i] for i in identifiers])
        erased = [p for c in changes if isinstance(c, Erased) for p in c.person_ids]
        if erased:
            await conn.execute(sql.FORGET_IDENTIFIERS, erased)
        return events

    def _touched(self, changes: Sequence[Change]) -> tuple[list[str], list[Identifier]]:
        """The person ids and identifiers whose lookup rows the changes altered."""
        people: dict[str, None] = {}
        identifiers: dict[Identifier, None] = {}
        for change in changes:
            if isinstance(change, Identified | Attached):
                people[change.person_id] = None
                identifiers.update(dict.fromkeys(change.identifiers))
            elif isinstance(change, Merged):
                people.update(dict.fromkeys(domain.merged_into(self.index, change.into)))
                identifiers.update(dict.fromkeys(self.index.members.get(change.into, ())))
            elif isinstance(change, Separated):
                people.update(dict.fromkeys(domain.merged_into(self.index,
                                                               change.person_id)))
                identifiers.update(dict.fromkeys(change.identifiers))
        # an identifier a later change of the same batch moved on is written where it is now
        return list(people), [i for i in identifiers if i in self.index.owner]


def concerns(change: Change) -> tuple[str, ...]:
    """The person ids a change is about."""
    if isinstance(change, Identified | Attached):
        return (change.person_id,)
    if isinstance(change, Merged):
        return (change.into, *change.absorbed)
    if isinstance(change, Separated):
        return (change.from_id, change.person_id)
    return change.person_ids


def _asserted_by(change: Change) -> str | None:
    return change.asserted_by if isinstance(change, Merged | Separated) else None


#: The changes that alter who is one person: the read models regroup on them.
REGROUPING = (Merged, Separated)


def regrouped_by(change: Merged | Separated) -> tuple[str, ...]:
    """The live people whose read models a merge or separation regroups: the survivor of a
    merge; both sides of a separation (each regrouped in its own partition)."""
    if isinstance(change, Merged):
        return (change.into,)
    return (change.from_id, change.person_id)
