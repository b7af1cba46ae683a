"""Publishing checked events exactly once per (agency, event id), with a claim row per id.

1. Claim every id of the request with one statement (autocommit): a new id becomes a 'pending'
   receipt held by this request. (A pending claim of the same content older than `stale_after`
   belongs to a request that died: it is taken over with one more statement.)
2. Produce the held events with acks=all to the agency's topic (only if the broker lists it),
   and confirm them (`LogCheck`: the topic still listed after the acknowledgement; Tansu
   acknowledges writes to a topic it lost in a restart, and keeps none of them).
3. One statement marks the confirmed ones 'accepted' (answer 202); one gives back the other
   claims (answer 503), so a retry claims them again at once.
An id held elsewhere is looked up: accepted with the same content answers 200 "already
accepted" once its record is read back from the log (a receipt that outlived its log, after a
broker reset, is claimed again and the event written again); different content 409. A
pending claim of the same content is another request writing it now: it is polled for up to
`claim_wait` seconds (a produce normally takes milliseconds, so concurrent duplicates get the
final answer), then answered 409 "in_progress" with Retry-After. A new event or a batch of
them costs two statements, one produce and one confirmation round (one metadata request).

The at-least-once edge every Kafka producer has without transactions remains: if the gateway
dies between the broker's acknowledgement and step 3, the claim stays pending, and a retry
after `stale_after` takes it over and writes a second copy; an event not confirmed in time is
answered 503 although it may be on the log. The processor archives by (agency, event id), so
its effects stay exactly once. If the database fails after the write was confirmed (at step 3,
or looking up other ids), the confirmed events are on the log, so they are still answered 202
and their claims are left to go stale (logged); the others are answered 503 "not written".
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
from services.common.serde.sealing import TRANSIT, seal_event
from services.ingest.adapters.log_check import LogCheck, Written
from services.ingest.adapters.publisher import Delivery, EventPublisher
from services.ingest.adapters.receipts import (
    Claim,
    Receipt,
    accept,
    claim,
    claim_again,
    receipts_for,
    release,
    take_over,
    transit_keys,
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
    log_check: LogCheck | None = None  # None: trust acknowledgements (not on Tansu)
    stale_after: float = 30.0  # seconds after which a pending claim belongs to a dead request
    claim_wait: float = 2.0    # seconds to wait for another request's claim to settle
    #: wraps the transit keys that seal each event's personal fields on the agency's topic
    #: (None: written in the clear, as a direct publisher writes)
    key_encryption_key: bytes | None = None


async def publish_events(gateway: Gateway, agency_id: str, events: Sequence[AgencyEvent],
                         traceparent: str | None = None) -> list[Outcome]:
    """One outcome per event, in order. Events are already checked and authorised.
    ``traceparent`` (the request's W3C trace context) is carried as a message header.

    A database failure (one of DATABASE_UNAVAILABLE) never raises: what the broker
    acknowledged keeps its "accepted", everything else is "not_written".
    """
    hashes = [content_hash(e) for e in events]
    first: dict[str, int] = {}  # the first position of each id in this request
    for i, event in enumerate(events):
        first.setdefault(event.event_id, i)
    claims = {i: Claim(events[i].event_id, hashes[i]) for i in first.values()}
    outcomes: dict[int, Outcome] = {}
    try:
        await _claim_and_produce(gateway, agency_id, events, hashes, claims, outcomes,
                                 traceparent)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("receipts database unavailable", error=type(exc).__name__,
                    written=len(outcomes), not_written=len(claims) - len(outcomes))
        outcomes.update((i, not_written(events[i].event_id)) for i in claims if i not in outcomes)
    return [outcomes.get(i) or _repeat(outcomes, first, hashes, events, i)
            for i in range(len(events))]


async def _claim_and_produce(gateway: Gateway, agency_id: str, events: Sequence[AgencyEvent],
                             hashes: list[str], claims: dict[int, Claim],
                             outcomes: dict[int, Outcome], traceparent: str | None = None
                             ) -> None:
    """Fill `outcomes` for each position in `claims`, as the module docstring describes."""
    # Positions to claim, to take over (stale), and to wait for (claimed by another request);
    # `again` holds receipts that outlived their log, claimed again by this request.
    new, stale, waiting = list(claims), list[int](), list[int]()
    again: dict[str, datetime] = {}
    deadline, pause = time.monotonic() + gateway.claim_wait, 0.005
    while True:
        held = await claim(gateway.pool, agency_id, [claims[i] for i in new]) if new else {}
        if stale:
            held.update(await take_over(gateway.pool, agency_id, [claims[i] for i in stale],
                                        gateway.stale_after))
        held.update(again)
        mine = {i: events[i] for i in claims if events[i].event_id in held and i not in outcomes}
        outcomes.update(await _produce(gateway, agency_id, mine, held, traceparent))
        others = [i for i in new + stale if events[i].event_id not in held] + waiting
        if not others:
            break
        found = await receipts_for(gateway.pool, agency_id,
                                   [events[i].event_id for i in others], gateway.stale_after)
        new, stale, waiting, written = [], [], [], []
        for i in others:
            receipt = found.get(events[i].event_id)
            if receipt is None:  # the claim was given back: try again
                new.append(i)
            elif receipt.content_hash != hashes[i]:
                outcomes[i] = conflict(events[i].event_id)
            elif receipt.accepted:
                written.append((i, receipt))
            else:  # another request is writing it
                (stale if receipt.stale else waiting).append(i)
        again = await _already_written(gateway, agency_id, events, written, outcomes)
        if not (new or stale or waiting or again):
            break
        if again:
            continue  # this request holds those claims now: write them, whatever the time
        if time.monotonic() + pause > deadline:
            outcomes.update((i, in_progress(events[i].event_id)) for i in new + stale + waiting)
            break
        if not (new or stale or again):
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)


async def _already_written(gateway: Gateway, agency_id: str, events: Sequence[AgencyEvent],
                           written: list[tuple[int, Receipt]], outcomes: dict[int, Outcome]
                           ) -> dict[str, datetime]:
    """Answer 200 "already accepted" for receipts whose record is on the log now; claim the
    others again (their log was replaced) and return them to be written again."""
    if not written:
        return {}
    on_log = await _on_log(gateway, [
        Written(r.topic or "", r.partition or 0, r.offset or 0, b"", read_back=True,
                event=(agency_id, events[i].event_id)) for i, r in written])
    lost = []
    for (i, receipt), present in zip(written, on_log, strict=True):
        if present:
            outcomes[i] = Outcome("already_accepted", receipt.event_id, receipt.partition,
                                  receipt.offset)
        else:
            lost.append(receipt)
    if lost:
        log.warning("receipts outlived their log; writing the events again", events=len(lost))
    return await claim_again(gateway.pool, agency_id, lost)


async def _on_log(gateway: Gateway, writes: list[Written]) -> list[bool]:
    if gateway.log_check is None:
        return [True] * len(writes)
    return await gateway.log_check.confirm(writes)


async def _produce(gateway: Gateway, agency_id: str, events: dict[int, AgencyEvent],
                   held: dict[str, datetime], traceparent: str | None = None
                   ) -> dict[int, Outcome]:
    """Produce the events this request holds, read them back, then settle their claims."""
    if not events:
        return {}
    outcomes: dict[int, Outcome] = {}
    seal = None
    if gateway.key_encryption_key is not None:
        # Sealed for the journey over the agency's topic; admission opens and re-seals it.
        keys = await transit_keys(gateway.pool, agency_id,
                                  [e.event_id for e in events.values()],
                                  gateway.key_encryption_key)
        for i, event in events.items():
            if event.event_id not in keys:   # its claim was taken over: not ours to write
                outcomes[i] = not_written(event.event_id)
        events = {i: e for i, e in events.items() if e.event_id in keys}

        def seal(event: AgencyEvent) -> AgencyEvent:
            return seal_event(event, keys[event.event_id], TRANSIT)
    deliveries = await gateway.publisher.publish(list(events.values()), traceparent, seal)
    acknowledged = [d for d in deliveries if d is not None]
    on_log = dict(zip(acknowledged, await _on_log(gateway, [
        Written(d.topic, d.partition, d.offset, d.value) for d in acknowledged]), strict=True))
    accepted: list[tuple[str, datetime, Delivery]] = []
    released: list[tuple[str, datetime]] = []
    for (i, event), delivery in zip(events.items(), deliveries, strict=True):
        token = held[event.event_id]
        if delivery is None or not on_log[delivery]:
            if delivery is not None:
                log.warning("acknowledged but not on the log; answered not written",
                            event_id=event.event_id, topic=delivery.topic,
                            partition=delivery.partition, offset=delivery.offset)
            outcomes[i] = not_written(event.event_id)
            released.append((event.event_id, token))
        else:
            outcomes[i] = Outcome("accepted", event.event_id, delivery.partition, delivery.offset)
            accepted.append((event.event_id, token, delivery))
    try:
        await accept(gateway.pool, agency_id, accepted)
        await release(gateway.pool, agency_id, released)
    except DATABASE_UNAVAILABLE as exc:
        log.warning("claims not settled; they go stale", error=type(exc).__name__,
                    accepted=len(accepted), released=len(released))
    return outcomes


def _repeat(outcomes: dict[int, Outcome], first: dict[str, int], hashes: list[str],
            events: Sequence[AgencyEvent], i: int) -> Outcome:
    """The same id twice in one batch: the later copy answers like a retry of the first."""
    event_id = events[i].event_id
    j = first[event_id]
    original = outcomes.get(j) or not_written(event_id)
    if hashes[i] != hashes[j]:
        return conflict(event_id)
    if original.status == "accepted":
        return Outcome("already_accepted", event_id, original.partition, original.offset)
    return original
