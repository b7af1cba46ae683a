"""An operator's hand on the person index: show a person, link, unlink, split.

Every assertion is a change in the index's log with who made it and why (``actor``,
``reason``: the audit trail of identity decisions), and a merge or separation goes to the
person-events topic like the matching rule's, so the read models regroup the same way
whoever decided. The index is read into memory from its log for each command (a command
takes the identity lock for its transaction, so it waits for admission's batch in flight).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from projections.queries import identity as sql
from services.common.events import Identifier
from services.common.identifiers import identifier_problem
from services.identity.codec import IdentityEvent, decode_identity_event, kind_of
from services.identity.domain import (
    OPERATOR,
    Attached,
    Change,
    Erased,
    Identified,
    Merged,
    PossibleMatch,
    Separated,
)
from services.identity.index_store import IndexStore
from services.identity.key_ring import KeyRing
from services.identity.messages import regroup_messages


class OperatorError(ValueError):
    """What the operator asked cannot be done; the message says why (no identifier values)."""


def parse_person_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise OperatorError("a person id is a UUID") from None


def parse_identifier(text: str) -> Identifier:
    """``scheme:value`` as typed, checked like an agency's (mod-11 for NHS numbers...)."""
    scheme, sep, value = text.partition(":")
    if not sep or not value:
        raise OperatorError("an identifier is scheme:value, e.g. nhs_number:9434765919")
    problem = identifier_problem(scheme, value)
    if problem is not None:
        raise OperatorError(f"{scheme}: {problem}")
    return Identifier(scheme, value)


@dataclass(frozen=True, slots=True)
class PersonView:
    person_id: str
    current_id: str
    identifiers: list[Identifier]
    merged: list[str]                   # person ids that resolve to this one
    history: list[dict[str, object]]    # the index's changes concerning them, oldest first


async def show(conn: asyncpg.Connection, *, identifier: Identifier | None = None,
               person_id: str | None = None) -> PersonView | None:
    """A person as the index holds them, found by an identifier or a person id (an old id
    shows where it went)."""
    if identifier is not None:
        person_id = await conn.fetchval(sql.PERSON_BY_IDENTIFIER, identifier.scheme,
                                        identifier.value)
    if person_id is None:
        return None
    row = await conn.fetchrow(sql.PERSON, person_id)
    if row is None:
        return None
    current = row["current_id"]
    identifiers = [Identifier(r["scheme"], r["value"])
                   for r in await conn.fetch(sql.IDENTIFIERS_OF, current)]
    merged = [r["person_id"] for r in await conn.fetch(sql.MERGED_INTO, current)]
    history = []
    for r in await conn.fetch(sql.CHANGES_OF, merged or [current]):
        change = decode_identity_event(r["body"]).change
        history.append({"seq": r["seq"], "decided_at": r["decided_at"], "kind": r["kind"],
                        "asserted_by": r["asserted_by"], "actor": r["actor"],
                        "reason": r["reason"], "summary": describe(change)})
    return PersonView(row["person_id"], current, identifiers, merged, history)


def describe(change: Change) -> str:
    """One line about a change, with person ids and schemes but no identifier values."""
    return f"{kind_of(change)}: {_DESCRIBE[type(change)](change)}"


def _schemes(identifiers: tuple[Identifier, ...]) -> str:
    return ", ".join(sorted({i.scheme for i in identifiers}))


_DESCRIBE: dict[type, Callable[[Any], str]] = {
    Identified: lambda c: f"person {c.person_id}; schemes {_schemes(c.identifiers)}",
    Attached: lambda c: f"person {c.person_id}; schemes {_schemes(c.identifiers)}",
    Merged: lambda c: f"person {c.into}; absorbed {', '.join(c.absorbed)}",
    Separated: lambda c: (f"person {c.person_id}; from {c.from_id}; "
                          f"schemes {_schemes(c.identifiers)}"),
    PossibleMatch: lambda c: f"people {', '.join(c.person_ids)}; reason {c.reason}",
    Erased: lambda c: f"people {', '.join(c.person_ids)} erased",
}


Decision = Callable[[IndexStore], list[Change]]


async def decide(pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str,
                 decision: Decision, by: str, reason: str, key_ring: KeyRing
                 ) -> list[IdentityEvent]:
    """Take the decision on the index, record it as ``by``'s with ``reason``, and put any
    merge or separation on the person-events topic (acknowledged before the commit: if the
    commit then fails, the read models regroup to what the index still says, a no-op)."""
    if not by.strip() or not reason.strip():
        raise OperatorError("say who you are (--by) and why (--reason): both are audited")
    store = IndexStore(key_ring)
    async with pool.acquire() as conn, conn.transaction():
        await store.open(conn)
        try:
            changes = decision(store)
        except OperatorError:
            raise
        except ValueError as exc:  # the domain's refusal (split of several people...)
            raise OperatorError(str(exc)) from None
        events = await store.record(conn, changes, datetime.now(UTC), actor=by,
                                    reason=reason)
        sends = [await producer.send(topic, m.value, key=m.key, headers=m.headers)
                 for m in regroup_messages(events)]
        await asyncio.gather(*sends)
    return events


def linking(a: Identifier, b: Identifier) -> Decision:
    """An operator links records the index holds (a mistyped but well-formed number would
    otherwise become a new person, linked)."""
    def decision(store: IndexStore) -> list[Change]:
        for identifier in (a, b):
            if store.index.person_of(identifier) is None:
                raise OperatorError(f"no record holds that {identifier.scheme}")
        return store.link(a, b, OPERATOR)
    return decision


def unlinking(a: Identifier, b: Identifier) -> Decision:
    return lambda store: store.unlink(a, b, OPERATOR)


def splitting(identifiers: list[Identifier]) -> Decision:
    return lambda store: store.split(identifiers)
