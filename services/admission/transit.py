"""Opening what the gateway sealed for transit, and forgetting the transit keys.

The gateway seals each event's personal fields with a key of that event's own, kept
(wrapped) with its receipt, before writing it to the agency's topic. Admission opens it
with that key, and once it has forwarded the event sealed for its person, forgets the key
in the same transaction that moves its position: the agency topic's copy then opens for
nobody. An event that comes sealed for transit is:

- opened, when its receipt still holds the key;
- a copy of an event admitted before (``COPY``: nothing to forward), when the receipt is
  there and its key already forgotten;
- refused with the reason, when no receipt holds it (not written by this deployment's
  gateway, or a write the gateway reported as failed and whose claim it gave back: the
  client was told to retry), or when it is sealed with anything but a transit key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from projections.queries import sealing as sql
from services.common.events import AgencyEvent
from services.common.serde.sealing import (
    TRANSIT,
    SealError,
    key_refs,
    transit_context,
    unseal_event,
    unwrap,
)

#: what an event sealed for transit turned out to be: opened, a copy, or a refusal reason
Opened = AgencyEvent | str | object


class TransitKeys:
    COPY: Final = object()

    def __init__(self, pool: asyncpg.Pool, key_encryption_key: bytes) -> None:
        self._pool = pool
        self._kek = key_encryption_key

    async def open(self, events: Sequence[AgencyEvent]) -> dict[tuple[str, str], Opened]:
        """For each sealed event among ``events``, keyed by (agency, event id): the event
        opened, ``COPY``, or why it is refused. Events sealed with nothing are left out."""
        out: dict[tuple[str, str], Opened] = {}
        sealed = []
        for event in events:
            refs = key_refs(event)
            if not refs:
                continue
            key = (event.source.agency, event.event_id)
            if refs != {TRANSIT}:
                out[key] = ("refused: sealed fields are for joinedup to seal (the gateway "
                            "seals for transit); publish them in the clear")
            else:
                sealed.append(event)
        if not sealed:
            return out
        rows = await self._pool.fetch(sql.TRANSIT_KEYS, [e.source.agency for e in sealed],
                                      [e.event_id for e in sealed])
        held = {(r["agency_id"], r["event_id"]): r["transit_key"] for r in rows}
        for event in sealed:
            pair = (event.source.agency, event.event_id)
            if pair not in held:
                out[pair] = ("refused: sealed for transit, but no receipt of this deployment's "
                             "gateway holds its key")
            elif held[pair] is None:
                out[pair] = self.COPY
            else:
                try:
                    opened_key = unwrap(bytes(held[pair]), self._kek, transit_context(*pair))
                    out[pair] = unseal_event(event, {TRANSIT: opened_key})
                except SealError:
                    out[pair] = "refused: its transit seal does not open with its key"
        return out

    async def forget(self, conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
        if pairs:
            await conn.execute(sql.FORGET_TRANSIT_KEYS, [a for a, _ in pairs],
                               [e for _, e in pairs])
