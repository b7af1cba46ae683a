"""Publishing checked events exactly once per event id, with a claim row per id.

1. Claim every id of the request with one statement (autocommit): a new id becomes a 'pending'
   receipt held by this request. (A pending claim of the same content older than `stale_after`
   belongs to a request that died: it is taken over with one more statement.)
2. Produce the held events with acks=all.
3. One statement marks the acknowledged ones 'accepted' (answer 202); one gives back the claims
   the broker did not acknowledge (answer 503), so a retry claims them again at once.
An id held elsewhere is looked up: accepted with the same content answers 200 "already
accepted", different content 409 "conflict". A pending claim of the same content is another
request writing it now: it is polled for up to `claim_wait` seconds (a produce normally takes
milliseconds, so concurrent duplicates get the final answer), then answered 409 "in_progress"
with Retry-After. A new event or a batch of them costs two statements and one produce.

The at-least-once edge every Kafka producer has without transactions remains: if the gateway
dies between the broker's acknowledgement and step 3, the claim stays pending, and a retry
after `stale_after` takes it over and writes a second copy. The processor archives by event
id, so its effects stay exactly once. If the database fails after the broker acknowledged
(at step 3, or looking up other ids), the acknowledged events are on the log, so they are
still answered 202 and their claims are left to go stale (logged); the events this request
did not produce are answered 503 "not written".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.common.db import DATABASE_UNAVAILABLE, BoundedPool
from services.common.events import AgencyEvent
from services.ingest.adapters.publisher import Delivery, EventPublisher
from services.ingest.adapters.receipts import (
    Claim,
    accept,
    claim,
    receipts_for,
    release,
    take_over,
)
from services.ingest.auth import CredentialCache
from services.ingest.domain.outcomes import Outcome, conflict, in_progress, not_written
from services.ingest.domain.parsing import content_hash

log = structlog.get_logger("joinedup.ingest")


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the handlers need: the receipts database and the event log."""

    pool: BoundedPool
    publisher: EventPublisher
    credentials: CredentialCache
    stale_after: float = 30.0  # seconds after which a pending claim belongs to a dead request
    claim_wait: float = 2.0    # seconds to wait for another request's claim to settle


async def publish_events(gateway: Gateway, agency_id: str, events: Sequence[AgencyEvent]
                         ) -> list[Outcome]:
    """One outcome per event, in order. Events are already checked and authorised.

    A database failure (one of DATABASE_UNAVAILABLE) never raises: what the broker
    acknowledged keeps its "accepted", everything else is "not_written".
    """
    hashes = [content_hash(e) for e in events]
    first: dict[str, int] = {}  # the first position of each id in this request
    for i, event in enumerate(events):
        first.setdefault(event.event_id, i)
    claims = {i: Claim(events[i].event_id, agency_id, hashes[i]) for i in first.values()}
    outcomes: dict[int, Outcome] = {}
    try:
        await _claim_and_produce(gateway, events, hashes, claims, outcomes)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("receipts database unavailable", error=type(exc).__name__,
                    written=len(outcomes), not_written=len(claims) - len(outcomes))
        outcomes.update((i, not_written(events[i].event_id)) for i in claims if i not in outcomes)
    return [outcomes.get(i) or _repeat(outcomes, first, hashes, events, i)
            for i in range(len(events))]


async def _claim_and_produce(gateway: Gateway, events: Sequence[AgencyEvent], hashes: list[str],
                             claims: dict[int, Claim], outcomes: dict[int, Outcome]) -> None:
    """Fill `outcomes` for each position in `claims`, as the module docstring describes."""
    # Positions to claim, to take over (stale), and to wait for (claimed by another request).
    new, stale, waiting = list(claims), list[int](), list[int]()
    deadline, pause = time.monotonic() + gateway.claim_wait, 0.005
    while True:
        held = await claim(gateway.pool, [claims[i] for i in new]) if new else {}
        if stale:
            held.update(await take_over(gateway.pool, [claims[i] for i in stale],
                                        gateway.stale_after))
        outcomes.update(await _produce(gateway, {i: events[i] for i in new + stale
                                                 if events[i].event_id in held}, held))
        others = [i for i in new + stale if events[i].event_id not in held] + waiting
        if not others:
            break
        found = await receipts_for(gateway.pool, [events[i].event_id for i in others],
                                   gateway.stale_after)
        new, stale, waiting = [], [], []
        for i in others:
            receipt = found.get(events[i].event_id)
            if receipt is None:  # the claim was given back: try again
                new.append(i)
            elif receipt.content_hash != hashes[i]:
                outcomes[i] = conflict(events[i].event_id)
            elif receipt.accepted:
                outcomes[i] = Outcome("already_accepted", receipt.event_id, receipt.partition,
                                      receipt.offset)
            else:  # another request is writing it
                (stale if receipt.stale else waiting).append(i)
        if not (new or stale or waiting):
            break
        if time.monotonic() + pause > deadline:
            outcomes.update((i, in_progress(events[i].event_id)) for i in new + stale + waiting)
            break
        if not (new or stale):
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)


async def _produce(gateway: Gateway, events: dict[int, AgencyEvent],
                   held: dict[str, datetime]) -> dict[int, Outcome]:
    """Produce the events this request holds, then settle their claims."""
    if not events:
        return {}
    deliveries = await gateway.publisher.publish(list(events.values()))
    outcomes: dict[int, Outcome] = {}
    accepted: list[tuple[str, datetime, Delivery]] = []
    released: list[tuple[str, datetime]] = []
    for (i, event), delivery in zip(events.items(), deliveries, strict=True):
        token = held[event.event_id]
        if delivery is None:
            outcomes[i] = not_written(event.event_id)
            released.append((event.event_id, token))
        else:
            outcomes[i] = Outcome("accepted", event.event_id, delivery.partition, delivery.offset)
            accepted.append((event.event_id, token, delivery))
    try:
        await accept(gateway.pool, accepted)
        await release(gateway.pool, released)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("claims not settled; they go stale", error=type(exc).__name__,
                    accepted=len(accepted), released=len(released))
    return outcomes


def _repeat(outcomes: dict[int, Outcome], first: dict[str, int], hashes: list[str],
            events: Sequence[AgencyEvent], i: int) -> Outcome:
    """The same id twice in one batch: the later copy answers like a retry of the first."""
    event_id = events[i].event_id
    j = first[event_id]
    original = outcomes[j]
    if hashes[i] != hashes[j]:
        return conflict(event_id)
    if original.status == "accepted":
        return Outcome("already_accepted", event_id, original.partition, original.offset)
    return original
