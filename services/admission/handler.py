"""Admission as a tracked consumer's batch handler.

`prepare` decodes and checks every record (an event the gateway sealed for its journey is
opened with its transit key first); `apply` parks the refused ones (dead-letter topic,
acks=all), then in one transaction moves the tracked positions (compare-and-set), resolves
each admitted event's identifiers to a person id (the identity step: the person index, see
services/identity/index_store.py), seals the event's personal fields with that person's
data key, forwards it to the person-events topic (keyed by person id, acks=all) with any
merge or separation the resolution decided (before the event it came with, keyed by each
person it concerns), forgets the transit keys of the events it forwarded, and commits. A database that
is down forwards nothing; a crash or a failed commit after the forward forwards the batch
again, and the archive recognises a forwarded copy by its event id: at least once, never lost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from services.admission.domain import refusal
from services.admission.transit import TransitKeys
from services.common import positions
from services.common.agencies import PublisherPolicy
from services.common.dead_letters import ADMISSION, DeadLetterTopic, Rejected, record_dead_letters
from services.common.events import AgencyEvent
from services.common.kafka import TopicGuard
from services.common.records import Message
from services.common.serde.agency_event import encode_event, read_event
from services.common.serde.headers import carried
from services.common.serde.sealing import person_ref, seal_event
from services.common.settings import Topics
from services.common.tracked_consumer import Batch
from services.identity.index_store import IndexStore
from services.identity.messages import regroup_messages

log = structlog.get_logger("joinedup.admission")


@dataclass(frozen=True, slots=True)
class Checked:
    batch: Batch
    admitted: list[tuple[Message, AgencyEvent]]
    rejected: list[Rejected]
    #: (agency, event id) of the admitted events that came sealed for transit
    in_transit: list[tuple[str, str]] = field(default_factory=list)
    copies: int = 0   # transit copies of events admitted before (their key is forgotten)


class Admission:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics,
                 dead_letters: DeadLetterTopic, policy: PublisherPolicy, name: str,
                 identity: IndexStore, transit: TransitKeys,
                 guard: TopicGuard | None = None) -> None:
        self._pool = pool
        self._identity = identity
        self._transit = transit
        self._producer = producer
        self._guard = guard
        self._topics = topics
        self._dead_letters = dead_letters
        self._policy = policy
        self.name = name
        self.admitted = 0
        self.refused = 0

    async def prepare(self, batch: Batch) -> Checked:
        admitted: list[tuple[Message, AgencyEvent]] = []
        rejected: list[Rejected] = []
        decoded = [(m, *read_event(m.value)) for m in batch.messages]
        opened = await self._transit.open([e for _, e, _ in decoded if e is not None])
        in_transit: list[tuple[str, str]] = []
        copies = 0
        for message, event, unreadable in decoded:
            reason = unreadable
            if event is not None:
                outcome = opened.get((event.source.agency, event.event_id))
                if outcome is TransitKeys.COPY:
                    copies += 1     # its event was admitted before: nothing to forward
                    continue
                if isinstance(outcome, str):
                    reason = outcome
                else:
                    if isinstance(outcome, AgencyEvent):
                        in_transit.append((event.source.agency, event.event_id))
                        event = outcome
                    reason = await self._check(message, event)
            if event is not None and reason is None:
                admitted.append((message, event))
                continue
            log.warning("message parked", topic=message.topic, partition=message.partition,
                        offset=message.offset, reason=reason)
            rejected.append(Rejected.of(message, reason or "undecodable", ADMISSION))
        return Checked(batch, admitted, rejected, in_transit, copies)

    async def _check(self, message: Message, event: AgencyEvent) -> str | None:
        agency = self._topics.agency_of(message.topic)
        registered = agency is not None and await self._policy.allows(agency)
        return refusal(agency, event, message.key, registered)

    async def _resolve_and_forward(self, conn: asyncpg.Connection, checked: Checked
                                   ) -> list[asyncio.Future[RecordMetadata]]:
        await self._identity.open(conn)
        resolved = [self._identity.admit(event) for _, event in checked.admitted]
        recorded = iter(await self._identity.record(
            conn, [c for _, changes in resolved for c in changes], datetime.now(UTC)))
        keys = await self._identity.key_ring.keys_of_people(
            conn, list(dict.fromkeys(person for person, _ in resolved)))
        topic = self._topics.person_events
        sends = []
        for (message, event), (person, changes) in zip(checked.admitted, resolved,
                                                       strict=True):
            decided = [next(recorded) for _ in changes]
            sends += [await self._producer.send(topic, m.value, key=m.key, headers=m.headers)
                      for m in regroup_messages(decided)]
            sealed = encode_event(seal_event(event, keys[person], person_ref(person)))
            sends.append(await self._producer.send(
                topic, sealed, key=person.encode(),
                headers=[*carried(message.headers),
                         ("joinedup-origin-topic", message.topic.encode()),
                         ("joinedup-origin-partition", str(message.partition).encode()),
                         ("joinedup-origin-offset", str(message.offset).encode())]))
        return sends

    async def apply(self, checked: Checked) -> None:
        parked = await self._dead_letters.park(checked.rejected)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await record_dead_letters(conn, parked)
                await positions.advance(conn, self.name, checked.batch.moves)
                if checked.admitted:
                    if self._guard is not None:
                        await self._guard.require([self._topics.person_events])
                    await asyncio.gather(*await self._resolve_and_forward(conn, checked))
                    await self._transit.forget(conn, checked.in_transit)
        except BaseException:
            # whatever the index decided in memory did not commit: it is read again
            self._identity.rolled_back()
            raise
        self.admitted += len(checked.admitted)
        self.refused += len(checked.rejected)
