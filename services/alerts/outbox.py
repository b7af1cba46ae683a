"""The alert outbox: alert events written in the transaction that raised them, published to
the alerts topic after commit.

The rules write alert events to the outbox in the batch's transaction; after commit they
are published to the alerts topic (keyed by person) and cleared. If the worker dies in
between, the next start publishes what is left: duplicates are possible, loss is not, and
the projector ignores an alert event id it has seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer

from projections.queries import alerts as sql
from services.alerts.codec import encode_alert_event
from services.alerts.events import AlertEvent
from services.common.kafka import TopicGuard


async def add_to_outbox(conn: asyncpg.Connection, events: Sequence[AlertEvent]) -> None:
    if events:
        await conn.execute(sql.ADD_TO_OUTBOX, [e.alert_event_id for e in events],
                           [e.person_key for e in events], [encode_alert_event(e) for e in events])


class AlertPublisher:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str,
                 guard: TopicGuard | None = None) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._guard = guard
        self._lock = asyncio.Lock()  # one drain at a time keeps per-person order

    async def publish(self, events: Sequence[AlertEvent] | None = None) -> int:
        """Publish pending outbox rows (the batch's events are among them)."""
        async with self._lock:
            published = 0
            while True:
                rows = await self._pool.fetch(sql.PENDING_OUTBOX, 1000)
                if not rows:
                    return published
                if self._guard is not None:  # never into a topic the broker lost
                    await self._guard.require([self._topic])
                sends = [await self._producer.send(self._topic, row["body"],
                                                   key=row["person_key"].encode())
                         for row in rows]
                await asyncio.gather(*sends)
                await self._pool.execute(sql.CLEAR_OUTBOX, [r["alert_event_id"] for r in rows])
                published += len(rows)
