"""Admission as a tracked consumer's batch handler.

`prepare` decodes and checks every record; `apply` parks the refused ones (dead-letter topic,
acks=all), then in one transaction moves the tracked positions (compare-and-set), resolves
each admitted event's identifiers to a person id (the identity step: the person index, see
services/identity/index_store.py), forwards the events to the person-events topic (the same
bytes, keyed by person id, acks=all) with any merge or separation the resolution decided
(before the event it came with, keyed by each person it concerns) and commits. A database that
is down forwards nothing; a crash or a failed commit after the forward forwards the batch
again, and the archive recognises a forwarded copy by its event id: at least once, never lost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from services.admission.domain import refusal
from services.common import positions
from services.common.agencies import PublisherPolicy
from services.common.dead_letters import DeadLetterTopic, Parked, Rejected, record_dead_letters
from services.common.events import AgencyEvent
from services.common.kafka import TopicGuard
from services.common.records import Message
from services.common.serde.agency_event import read_event
from services.common.serde.headers import carried
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


class Admission:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics,
                 dead_letters: DeadLetterTopic, policy: PublisherPolicy, name: str,
                 identity: IndexStore, guard: TopicGuard | None = None) -> None:
        self._pool = pool
        self._identity = identity
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
        for message in batch.messages:
            reason, event = await self._check(message)
            if event is not None and reason is None:
                admitted.append((message, event))
                continue
            log.warning("message parked", topic=message.topic, partition=message.partition,
                        offset=message.offset, reason=reason)
            rejected.append(Rejected(Parked(message.topic, message.partition, message.offset,
                                            reason or "undecodable"),
                                     message.key, message.value))
        return Checked(batch, admitted, rejected)

    async def _check(self, message: Message) -> tuple[str | None, AgencyEvent | None]:
        event, unreadable = read_event(message.value)
        if event is None:
            return unreadable, None
        agency = self._topics.agency_of(message.topic)
        registered = agency is not None and await self._policy.allows(agency)
        return refusal(agency, event, message.key, registered), event

    async def _resolve_and_forward(self, conn: asyncpg.Connection, checked: Checked
                                   ) -> list[asyncio.Future[RecordMetadata]]:
        await self._identity.open(conn)
        resolved = [self._identity.admit(event) for _, event in checked.admitted]
        recorded = iter(await self._identity.record(
            conn, [c for _, changes in resolved for c in changes], datetime.now(UTC)))
        topic = self._topics.person_events
        sends = []
        for (message, _), (person, changes) in zip(checked.admitted, resolved, strict=True):
            decided = [next(recorded) for _ in changes]
            sends += [await self._producer.send(topic, m.value, key=m.key, headers=m.headers)
                      for m in regroup_messages(decided)]
            sends.append(await self._producer.send(
                topic, message.value, key=person.encode(),
                headers=[*carried(message.headers),
                         ("joinedup-origin-topic", message.topic.encode()),
                         ("joinedup-origin-partition", str(message.partition).encode()),
                         ("joinedup-origin-offset", str(message.offset).encode())]))
        return sends

    async def apply(self, checked: Checked) -> None:
        await self._dead_letters.park(checked.rejected)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await record_dead_letters(conn, [r.parked for r in checked.rejected])
                await positions.advance(conn, self.name, checked.batch.moves)
                if checked.admitted:
                    if self._guard is not None:
                        await self._guard.require([self._topics.person_events])
                    await asyncio.gather(*await self._resolve_and_forward(conn, checked))
        except BaseException:
            # whatever the index decided in memory did not commit: it is read again
            self._identity.rolled_back()
            raise
        self.admitted += len(checked.admitted)
        self.refused += len(checked.rejected)
