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
    """Most events repeat identifiers already recorded: those already in person_identifier
    (learnt after a commit, bounded) are not written again, saving a row write each."""

    def __init__(self, remembered: int = 500_000) -> None:
        self._known: set[Identifier] = set()
        self._pending: set[Identifier] = set()
        self._remembered = remembered

    async def write(self, conn: asyncpg.Connection, changes: Sequence[Sighting]) -> None:
        first: dict[Identifier, tuple[str, datetime]] = {}
        for identifier, person, at in changes:
            if identifier not in self._known:
                first.setdefault(identifier, (person, at))  # the first sighting in log order
        self._pending = set(first)
        if first:
            ids = list(first.items())
            await conn.execute(
                sql.UPSERT_IDENTIFIERS, [i.scheme for i, _ in ids], [i.value for i, _ in ids],
                [p for _, (p, _) in ids], [at for _, (_, at) in ids])

    def committed(self) -> None:
        if len(self._known) > self._remembered:  # forget and re-learn
            self._known.clear()
        self._known |= self._pending
        self._pending = set()

    def rolled_back(self) -> None:
        self._pending = set()


def identifiers() -> ReadModel[None, None, Sighting]:
    return ReadModel("identifiers", dict.fromkeys(PAYLOAD_BY_FAMILY, note_identifiers), no_key,
                     IdentifierStore(), ("person_identifier",))
