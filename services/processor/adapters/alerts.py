"""Alert events at the edges: the transactional outbox, the topic, and the read model.

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
from services.common.alerts import AlertEvent
from services.common.kafka import TopicGuard
from services.common.serde.alert_event import encode_alert_event


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


async def project_alert_events(conn: asyncpg.Connection, events: Sequence[AlertEvent]) -> int:
    """Apply alert events to the read model once each; returns how many were new."""
    if not events:
        return 0
    async with conn.transaction():
        new = {r["alert_event_id"] for r in await conn.fetch(
            sql.RECORD_HISTORY, [e.alert_event_id for e in events], [e.alert_id for e in events],
            [e.action for e in events], [e.at for e in events], [e.actor for e in events],
            [e.resolution for e in events],
            [e.evidence_event_id or e.resolving_event_id for e in events],
            [e.evidence_agency for e in events], [e.detail for e in events])}
        fresh = [e for e in events if e.alert_event_id in new]
        raised = [(e.alert_id, e.person_key, e.rule_id, e.rule_version, e.severity,
                   e.duty_team, e.title, e.explanation, e.source_reference, e.trigger_event_id,
                   e.expected, e.window_start, e.due_at, e.at)
                  for e in fresh if e.action == "raised"]
        resolved = [(e.alert_id, e.at, e.resolution, e.resolving_event_id)
                    for e in fresh if e.action == "resolved"]
        # Raised before resolved: an alert raised and resolved in one batch ends resolved.
        if raised:
            await conn.executemany(sql.OPEN_ALERT, raised)
        if resolved:
            await conn.executemany(sql.RESOLVE_ALERT, resolved)
        if joined := sorted({e.alert_id for e in fresh if e.action == "evidence"}):
            await conn.execute(sql.COUNT_EVIDENCE, joined)
    return len(new)
