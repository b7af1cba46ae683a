"""The Kafka side of the gateway: produce with acks=all, keyed by person, within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.common.event_log import EventLog
from services.common.events import AgencyEvent
from services.common.kafka import TopicGuard, make_producer
from services.common.message_keys import SubjectKeys
from services.common.settings import Settings, Topics

log = structlog.get_logger("joinedup.ingest")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker put an acknowledged event, and the bytes it was given."""

    topic: str
    partition: int
    offset: int
    value: bytes = b""


def gateway_producer(settings: Settings) -> AIOKafkaProducer:
    # aiokafka fails a batch it could not deliver after request_timeout_ms. Making that the
    # gateway's own deadline means a write we answered 503 for is not delivered later behind
    # the client's back (which would turn the client's retry into a second copy).
    return make_producer(settings, request_timeout_ms=int(
        settings.api_produce_timeout_seconds * 1000), linger_ms=1)


class EventPublisher:
    """Writes each event to its agency's own topic (the gateway writes as the agency it
    authenticated; admission checks the event's agency against the topic)."""

    def __init__(self, producer: AIOKafkaProducer, topics: Topics, keys: SubjectKeys,
                 timeout: float, guard: TopicGuard | None = None) -> None:
        self._producer = producer
        self._log = EventLog(producer, topics, keys)
        self._topics = topics
        self._timeout = timeout
        self._guard = guard

    async def publish(self, events: Sequence[AgencyEvent], traceparent: str | None = None,
                      seal: Callable[[AgencyEvent], AgencyEvent] | None = None
                      ) -> list[Delivery | None]:
        """Produce every event; None for each one the broker did not acknowledge in time.
        ``traceparent``, the request's trace context, goes with each message as a header;
        ``seal`` gives the event as it is written (its personal fields sealed)."""
        if not events:
            return []
        if self._guard is not None:
            try:
                await self._guard.require({self.topic_of(e) for e in events})
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("not written: the agency's topic is not on the broker",
                            error=type(exc).__name__, events=len(events))
                return [None] * len(events)
        sends = [asyncio.ensure_future(self._send(event, traceparent, seal))
                 for event in events]
        # A little over aiokafka's own deadline, so its failure normally arrives first.
        done, pending = await asyncio.wait(sends, timeout=self._timeout + 1.0)
        for task in pending:
            task.cancel()
        results: list[Delivery | None] = []
        for event, task in zip(events, sends, strict=True):
            if task in done and task.exception() is None:
                results.append(task.result())
            else:
                failure = "timeout" if task in pending else type(task.exception()).__name__
                log.warning("produce failed", event_id=event.event_id, failure=failure)
                results.append(None)
        return results

    def topic_of(self, event: AgencyEvent) -> str:
        return self._log.topic_of(event)

    async def _send(self, event: AgencyEvent, traceparent: str | None,
                    seal: Callable[[AgencyEvent], AgencyEvent] | None) -> Delivery:
        message = self._log.message(event, traceparent, seal(event) if seal else None)
        ack = await (await self._log.send_message(message))
        return Delivery(ack.topic, ack.partition, ack.offset, message.value)

    async def ready(self) -> bool:
        """A broker answers a metadata request now (not from the cache) and has the topics."""
        try:
            cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
        except (KafkaError, TimeoutError, OSError):
            return False
        return bool(cluster.partitions_for_topic(self._topics.person_events))
