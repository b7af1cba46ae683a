"""Sightings: every identifier seen under each person, and since when, so a timeline can be
found by any of them (and an identifier seen under two people, a possible match the person
index reported, shows as two rows)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from projections.queries import backbone as sql
from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent, Identifier
from services.processor.read_models.registry import ReadModel, Stateless, no_key

#: (identifier, person key, first seen)
Sighting = tuple[Identifier, str, datetime]
Sighted = tuple[Identifier, str]


def note_identifiers(state: None, event: AgencyEvent) -> tuple[None, list[Sighting]]:
    if event.erased:  # its identifiers are unreadable: the person was erased
        return None, []
    return None, [(i, event.person_key, event.occurred_at) for i in event.identifiers]


class IdentifierStore(Stateless[Sighting]):
    """Most events repeat identifiers already recorded: a sighting later than the first one
    already in person_identifier (learnt after a commit, bounded) is not written again,
    saving a row write each. An earlier one is: a row holds the earliest sighting of the
    identifier under that person whatever order they arrive in, so a rebuild gives the same
    rows."""

    def __init__(self, remembered: int = 500_000) -> None:
        self._known: dict[Sighted, datetime] = {}
        self._pending: dict[Sighted, datetime] = {}
        self._remembered = remembered

    async def write(self, conn: asyncpg.Connection, changes: Sequence[Sighting]) -> None:
        first: dict[Sighted, datetime] = {}
        for identifier, person, at in changes:
            known = self._known.get((identifier, person))
            if known is not None and at > known:
                continue  # later than what is recorded: changes nothing
            seen = first.get((identifier, person))
            if seen is None or at < seen:
                first[(identifier, person)] = at
        self._pending.update(first)
        if first:
            rows = sorted(first.items(), key=lambda kv: (kv[0][0].scheme, kv[0][0].value,
                                                         kv[0][1]))  # lock order
            await conn.execute(
                sql.UPSERT_IDENTIFIERS, [i.scheme for (i, _), _ in rows],
                [i.value for (i, _), _ in rows], [p for (_, p), _ in rows],
                [at for _, at in rows])

    def committed(self) -> None:
        if len(self._known) > self._remembered:  # forget and re-learn
            self._known.clear()
        self._known.update(self._pending)
        self._pending = {}

    def rolled_back(self) -> None:
        self._pending = {}

    def reset(self) -> None:
        self._known.clear()
        self._pending = {}

    async def forget(self, conn: asyncpg.Connection, people: Sequence[str]) -> None:
        await conn.execute(sql.FORGET_SIGHTINGS, people)
        self.reset()


def identifiers() -> ReadModel[None, None, Sighting]:
    return ReadModel("identifiers", dict.fromkeys(PAYLOAD_BY_FAMILY, note_identifiers), no_key,
                     IdentifierStore(), ("person_identifier",))
