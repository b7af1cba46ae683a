"""The alert outbox: alert events written in the transaction that raised them, published to
the alerts topic after commit.

The rules write alert events to the outbox in the batch's transaction; after commit they
are published to the alerts topic (keyed by person) and cleared. If the worker dies in
between, the next start publishes what is left: duplicates are possible, loss is not, and
the projector ignores an alert event id it has seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer

from projections.queries import alerts as sql
from services.alerts.codec import decode_alert_event, encode_alert_event
from services.alerts.events import AlertEvent
from services.common.kafka import TopicGuard
from services.common.outbox import OutboxPublisher
from services.common.serde.avro import alert_codec
from services.common.serde.headers import Headers, cloudevent_headers


async def add_to_outbox(conn: asyncpg.Connection, events: Sequence[AlertEvent]) -> None:
    if events:
        await conn.execute(sql.ADD_TO_OUTBOX, [e.alert_event_id for e in events],
                           [e.person_key for e in events], [encode_alert_event(e) for e in events])


class AlertPublisher(OutboxPublisher):
    """The alert outbox, drained to the alerts topic keyed by person."""

    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str,
                 guard: TopicGuard | None = None) -> None:
        super().__init__(pool, producer, topic, sql.PENDING_OUTBOX, sql.CLEAR_OUTBOX, guard,
                         headers=alert_headers)

    async def publish(self, events: Sequence[AlertEvent] | None = None) -> int:
        """Publish pending outbox rows (the batch's events are among them)."""
        return await super().publish()


def alert_headers(body: bytes) -> Headers:
    """The CloudEvents Kafka binding headers of an alert event (no personal data)."""
    event = decode_alert_event(body)
    return cloudevent_headers(alert_codec(), event.alert_event_id, "/joinedup/alerts",
                              f"alert.{event.action}", event.at)
