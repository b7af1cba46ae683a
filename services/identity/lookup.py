"""Which person an event is, from the person index in PostgreSQL (no index in memory), and
whether an identity change was recorded.

The identity step keys each event by the person id it resolved; whoever folds the event
asks the committed index again rather than trusting the key: an event can be read before
the transaction that resolved it commits (or after it failed and was decided again), and a
merge or separation decided since can have moved its identifiers. The answer is the same
one the matching rule gives: the live person holding the event's strongest identifier that
the index holds (``domain.resolve`` picks exactly that person).

A writer of the index (admission, an operator) puts its messages on the topic before its
transaction commits, holding the identity lock meanwhile; ``after_writer`` waits for that
transaction to end, so what the reader asks next sees its outcome, committed or not.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.queries import identity as sql
from services.common.events import AgencyEvent, Identifier
from services.identity.domain import indexed, strongest_first


async def people_of(conn: asyncpg.Connection, events: Sequence[AgencyEvent]
                    ) -> list[str | None]:
    """Each event's person id now; None for an event the index does not know yet."""
    held = [indexed(e.identifiers, e.source.agency) for e in events]
    wanted = list(dict.fromkeys(i for identifiers in held for i in identifiers))
    if not wanted:
        return []
    owner = {Identifier(r["scheme"], r["value"]): r["person_id"]
             for r in await conn.fetch(sql.OWNERS, [i.scheme for i in wanted],
                                       [i.value for i in wanted])}
    return [_first_owned(identifiers, owner) for identifiers in held]


def _first_owned(identifiers: tuple[Identifier, ...], owner: dict[Identifier, str]
                 ) -> str | None:
    if len(identifiers) == 1:  # the common case
        return owner.get(identifiers[0])
    for identifier in strongest_first(identifiers):
        if (person := owner.get(identifier)) is not None:
            return person
    return None


async def after_writer(conn: asyncpg.Connection) -> None:
    """Wait for the index's writer in progress, if any, to commit or roll back."""
    await conn.execute(sql.AWAIT_WRITER)
    await conn.execute(sql.RELEASE)


async def recorded(conn: asyncpg.Connection, change_id: str) -> bool:
    """Whether the change is in the index's log (its writer committed)."""
    return bool(await conn.fetchval(sql.RECORDED, change_id))
