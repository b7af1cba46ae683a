"""Alert events from the alerts topic into the alert read model, waiting out outages.

The Faust agent hands each batch here and moves on only when it returns, so Faust commits the
batch's offsets only after its events are projected (or parked). A database or broker that is
down is retried with backoff for as long as it takes; an event whose projection fails for
another reason (a bug, an event the read model cannot hold) is parked on the dead-letter topic
with the reason instead of stopping the worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from services.alerts.codec import decode_alert_event
from services.alerts.events import AlertEvent
from services.alerts.read_model import LiveDelivery, project_alert_events
from services.common.db import DATABASE_UNAVAILABLE
from services.common.dead_letters import (
    ALERT_PROJECTION,
    DeadLetterTopic,
    Rejected,
    record_dead_letters,
)
from services.common.health import Health
from services.common.kafka import BROKER_UNAVAILABLE
from services.common.records import Message
from services.common.serde.avro import DecodeError

log = structlog.get_logger("joinedup.alerts")
_RETRY = (*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE)


class AlertProjector:
    def __init__(self, pool: asyncpg.Pool, dead_letters: DeadLetterTopic, health: Health,
                 initial: float = 0.5, maximum: float = 30.0,
                 delivery: LiveDelivery | None = None) -> None:
        self._pool = pool
        self._delivery = delivery
        self._dead_letters = dead_letters
        self._health = health
        self._wait = wait_exponential_jitter(initial=initial, max=maximum)

    async def project(self, messages: Sequence[Message]) -> None:
        events: list[tuple[Message, AlertEvent]] = []
        rejected: list[Rejected] = []
        for message in messages:
            try:
                events.append((message, decode_alert_event(message.value or b"")))
            except DecodeError as exc:  # parked like any bad message, never dropped
                rejected.append(_rejected(message, f"undecodable alert event: {exc}"))
        await self._retrying(self._park, rejected)
        try:
            await self._retrying(self._write, [e for _, e in events])
        except Exception:
            await self._one_by_one(events)
        self._health.up("alert projector")

    async def _write(self, events: Sequence[AlertEvent]) -> None:
        async with self._pool.acquire() as conn:
            await project_alert_events(conn, events, self._delivery)

    async def _one_by_one(self, events: Sequence[tuple[Message, AlertEvent]]) -> None:
        for message, event in events:
            try:
                await self._retrying(self._write, [event])
            except Exception as exc:
                reason = f"alert projection failed: {type(exc).__name__}"
                log.error("alert event parked", topic=message.topic,
                          partition=message.partition, offset=message.offset, reason=reason)
                await self._retrying(self._park, [_rejected(message, reason, type(exc))])

    async def _park(self, rejected: Sequence[Rejected]) -> None:
        """Parked (acknowledged), then recorded for `joinedup dead-letters`."""
        parked = await self._dead_letters.park(rejected)
        if parked:
            async with self._pool.acquire() as conn:
                await record_dead_letters(conn, parked)

    async def _retrying(self, call, argument) -> None:  # type: ignore[no-untyped-def]
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(_RETRY),
                                           wait=self._wait, reraise=True,
                                           before_sleep=self._waiting):
            with attempt:
                await call(argument)

    def _waiting(self, state: object) -> None:
        outcome = getattr(state, "outcome", None)
        error = type(outcome.exception()).__name__ if outcome is not None else "unknown"
        if self._health.ready_component("alert projector"):
            log.warning("alert projection waiting for the servers", error=error)
        self._health.down("alert projector", f"servers unavailable ({error})")


def _rejected(message: Message, reason: str,
              error: type[BaseException] | None = None) -> Rejected:
    return Rejected.of(message, reason, ALERT_PROJECTION, error)
