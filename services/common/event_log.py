"""The one way agency events are written to the log: encoded (single-object Avro), keyed by a
keyed hash of the person's strongest identifier (``message_keys.py``), to the publishing
agency's topic, with the headers of ``serde/headers.py``.

The gateway, the simulator, the benchmarks and the tests all write through this, so what
reaches a topic is the same whoever wrote it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from services.common.events import AgencyEvent
from services.common.message_keys import SubjectKeys
from services.common.serde.agency_event import encode_event
from services.common.serde.headers import Headers, agency_event_headers
from services.common.settings import Topics


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


class EventLog:
    def __init__(self, producer: AIOKafkaProducer, topics: Topics, keys: SubjectKeys) -> None:
        self._producer = producer
        self._topics = topics
        self._keys = keys

    def topic_of(self, event: AgencyEvent) -> str:
        return self._topics.agency(event.source.agency)

    def message(self, event: AgencyEvent, traceparent: str | None = None,
                sealed: AgencyEvent | None = None) -> Outgoing:
        """``sealed``: the event as written, its personal fields sealed (the key is still the
        keyed hash of the person's identifier in the clear, the same for every write)."""
        return Outgoing(self.topic_of(event), self._keys.of(event),
                        encode_event(sealed or event), agency_event_headers(event, traceparent))

    async def send(self, event: AgencyEvent, traceparent: str | None = None
                   ) -> asyncio.Future[RecordMetadata]:
        """Queue the event; the future resolves when the broker acknowledges it."""
        return await self.send_message(self.message(event, traceparent))

    async def send_message(self, message: Outgoing) -> asyncio.Future[RecordMetadata]:
        return await self._producer.send(message.topic, message.value, key=message.key,  # type: ignore[no-any-return]
                                         headers=message.headers)
