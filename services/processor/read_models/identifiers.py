"""Person identifiers: every identifier seen, with the person it belongs to and since when,
so a timeline can be found by any of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from projections.queries import backbone as sql
from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent, Identifier
from services.processor.read_models.registry import ReadModel, Stateless, no_key

#: (identifier, person key, first seen)
Sighting = tuple[Identifier, str, datetime]


def note_identifiers(state: None, event: AgencyEvent) -> tuple[None, list[Sighting]]:
    return None, [(i, event.person_key, event.occurred_at) for i in event.identifiers]


class IdentifierStore(Stateless[Sighting]):
    """Most events repeat identifiers already recorded: a sighting later than the first one
    already in person_identifier (learnt after a commit, bounded) is not written again,
    saving a row write each. An earlier one is: the row holds the earliest sighting (person
    key and time) whatever order they arrive in, so a rebuild gives the same rows."""

    def __init__(self, remembered: int = 500_000) -> None:
        self._known: dict[Identifier, datetime] = {}
        self._pending: dict[Identifier, datetime] = {}
        self._remembered = remembered

    async def write(self, conn: asyncpg.Connection, changes: Sequence[Sighting]) -> None:
        first: dict[Identifier, tuple[str, datetime]] = {}
        for identifier, person, at in changes:
            known = self._known.get(identifier)
            if known is not None and at > known:
                continue  # later than what is recorded: changes nothing
            seen = first.get(identifier)
            if seen is None or (at, person) < (seen[1], seen[0]):
                first[identifier] = (person, at)
        self._pending = {i: at for i, (_, at) in first.items()}
        if first:
            ids = sorted(first.items(), key=lambda kv: (kv[0].scheme, kv[0].value))  # lock order
            await conn.execute(
                sql.UPSERT_IDENTIFIERS, [i.scheme for i, _ in ids], [i.value for i, _ in ids],
                [p for _, (p, _) in ids], [at for _, (_, at) in ids])

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


def identifiers() -> ReadModel[None, None, Sighting]:
    return ReadModel("identifiers", dict.fromkeys(PAYLOAD_BY_FAMILY, note_identifiers), no_key,
                     IdentifierStore(), ("person_identifier",))
