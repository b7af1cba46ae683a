"""Admission as a tracked consumer's batch handler.

`prepare` decodes and checks every record; `apply` parks the refused ones (dead-letter topic,
acks=all), then in one transaction moves the tracked positions (compare-and-set), forwards
the admitted ones to the person-events topic (the same bytes, keyed by person, acks=all) and
commits. A database that is down forwards nothing; a crash or a failed commit after the
forward forwards the batch again, and the archive recognises a forwarded copy by its event
id: at least once, never lost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

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

log = structlog.get_logger("joinedup.admission")


@dataclass(frozen=True, slots=True)
class Checked:
    batch: Batch
    admitted: list[tuple[Message, AgencyEvent]]
    rejected: list[Rejected]


class Admission:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topics: Topics,
                 dead_letters: DeadLetterTopic, policy: PublisherPolicy, name: str,
                 guard: TopicGuard | None = None) -> None:
        self._pool = pool
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

    async def apply(self, checked: Checked) -> None:
        await self._dead_letters.park(checked.rejected)
        async with self._pool.acquire() as conn, conn.transaction():
            await record_dead_letters(conn, [r.parked for r in checked.rejected])
            await positions.advance(conn, self.name, checked.batch.moves)
            if self._guard is not None and checked.admitted:
                await self._guard.require([self._topics.person_events])
            sends = [await self._producer.send(
                self._topics.person_events, message.value, key=event.person_key.encode(),
                headers=[*carried(message.headers),
                         ("joinedup-origin-topic", message.topic.encode()),
                         ("joinedup-origin-partition", str(message.partition).encode()),
                         ("joinedup-origin-offset", str(message.offset).encode())])
                for message, event in checked.admitted]
            await asyncio.gather(*sends)
        self.admitted += len(checked.admitted)
        self.refused += len(checked.rejected)
