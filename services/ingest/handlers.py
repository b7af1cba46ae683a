"""Publishing checked events exactly once per event id.

Under a transaction-scoped advisory lock per event id: look up earlier receipts, produce only
the events never accepted, and record a receipt for each one the broker acknowledged, in that
same transaction. A concurrent post of the same id waits on the lock and then finds the receipt,
so it answers "already accepted" instead of writing a second copy. If the broker does not
acknowledge, no receipt is written and the lock is released, so a retry produces afresh.

A crash between the broker's acknowledgement and the commit leaves the event on the log without
a receipt; the client's retry then writes a second copy. That is the at-least-once edge every
Kafka producer has without transactions; the processor archives by event id, so its effects
stay exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from services.common.events import AgencyEvent
from services.ingest.adapters.publisher import EventPublisher
from services.ingest.adapters.receipts import (
    NewReceipt,
    lock_event_ids,
    receipts_for,
    record_receipts,
)
from services.ingest.auth import CredentialCache
from services.ingest.domain.outcomes import Outcome, conflict, not_written
from services.ingest.domain.parsing import content_hash


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the handlers need: the receipts database and the event log."""

    pool: asyncpg.Pool
    publisher: EventPublisher
    credentials: CredentialCache


async def publish_events(gateway: Gateway, agency_id: str, events: Sequence[AgencyEvent]
                         ) -> list[Outcome]:
    """One outcome per event, in order. Events are already checked and authorised."""
    hashes = [content_hash(e) for e in events]
    outcomes: list[Outcome | None] = [None] * len(events)
    first: dict[str, int] = {}  # the first position of each id in this request
    async with gateway.pool.acquire() as conn, conn.transaction():
        await lock_event_ids(conn, list({e.event_id for e in events}))
        earlier = await receipts_for(conn, [e.event_id for e in events])
        to_send: list[int] = []
        for i, event in enumerate(events):
            receipt = earlier.get(event.event_id)
            if receipt is not None:
                outcomes[i] = (Outcome("already_accepted", event.event_id, receipt.partition,
                                       receipt.offset)
                               if receipt.content_hash == hashes[i] else conflict(event.event_id))
            elif event.event_id not in first:
                first[event.event_id] = i
                to_send.append(i)
        deliveries = await gateway.publisher.publish([events[i] for i in to_send])
        new: list[NewReceipt] = []
        for i, delivery in zip(to_send, deliveries, strict=True):
            event_id = events[i].event_id
            if delivery is None:
                outcomes[i] = not_written(event_id)
                continue
            outcomes[i] = Outcome("accepted", event_id, delivery.partition, delivery.offset)
            new.append(NewReceipt(event_id, agency_id, hashes[i], delivery))
        await record_receipts(conn, new)
    return [outcome or _repeat(outcomes, first, hashes, events, i)
            for i, outcome in enumerate(outcomes)]


def _repeat(outcomes: list[Outcome | None], first: dict[str, int], hashes: list[str],
            events: Sequence[AgencyEvent], i: int) -> Outcome:
    """The same id twice in one batch: the later copy answers like a retry of the first."""
    event_id = events[i].event_id
    j = first[event_id]
    original = outcomes[j]
    assert original is not None
    if hashes[i] != hashes[j]:
        return conflict(event_id)
    if original.status == "accepted":
        return Outcome("already_accepted", event_id, original.partition, original.offset)
    return not_written(event_id)
