"""Parking unreadable or refused messages on the dead-letter topic, with the reason, and
recording them in PostgreSQL (the position and reason only, never the content).

The original key and bytes are kept untouched so the message can be re-driven once fixed;
the reason and the source position travel as headers. Publishing waits for acks=all before
the batch's position is recorded, so a parked message is never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from projections.queries import dead_letters as sql
from services.common.kafka import TopicGuard


@dataclass(frozen=True, slots=True)
class Parked:
    topic: str
    partition: int
    offset: int
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    parked: Parked
    key: bytes | None
    value: bytes | None


class DeadLetterTopic:
    def __init__(self, producer: AIOKafkaProducer, topic: str,
                 guard: TopicGuard | None = None) -> None:
        self._producer = producer
        self._topic = topic
        self._guard = guard

    async def park(self, rejected: Sequence[Rejected]) -> None:
        if not rejected:
            return
        if self._guard is not None:
            await self._guard.require([self._topic])
        now = datetime.now(UTC).isoformat()
        sends = [
            await self._producer.send(
                self._topic, value=r.value, key=r.key,
                headers=[
                    ("joinedup-reason", r.parked.reason.encode()),
                    ("joinedup-source-topic", r.parked.topic.encode()),
                    ("joinedup-source-partition", str(r.parked.partition).encode()),
                    ("joinedup-source-offset", str(r.parked.offset).encode()),
                    ("joinedup-parked-at", now.encode()),
                ])
            for r in rejected
        ]
        await asyncio.gather(*sends)


async def record_dead_letters(conn: asyncpg.Connection, parked: Sequence[Parked]) -> None:
    if parked:
        await conn.execute(
            sql.RECORD_DEAD_LETTERS, [p.topic for p in parked], [p.partition for p in parked],
            [p.offset for p in parked], [p.reason for p in parked])
