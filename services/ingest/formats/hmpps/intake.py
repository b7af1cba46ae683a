"""The HMPPS intake: reads the raw domain events off ``<prefix>.hmpps-domain-events.<agency>``
(written by the SNS endpoint, or by an HMPPS-side bridge straight to Kafka), maps each by the
mapping file and publishes it through the gateway's own publish handler (receipts, transit
sealing, acks=all), as the agency whose topic it came on.

Nothing is lost: a batch's offsets are committed only once every message in it is on its
agency's topic (accepted, already accepted, or a repeat of a fact already accepted) or
parked on the dead-letter topic with the reason (unmapped type, broken structure or
enumeration, no person identifier, refused by the contract). If anything is not written,
the batch is read again from its first offsets after a back-off; receipts make the retry
idempotent. A broker that forgot the committed offsets (restarted on memory storage: a new,
empty log) has its partitions read again from their start, not from the old position.
Runs in the gateway process, one consumer group across gateway replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections import defaultdict
from collections.abc import Mapping as Map
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.common.backoff import Backoff
from services.common.db import DATABASE_UNAVAILABLE
from services.common.dead_letters import (
    HMPPS_INTAKE,
    DeadLetterTopic,
    Refused,
    Rejected,
    class_name,
    record_dead_letters,
)
from services.common.events import AgencyEvent
from services.common.kafka import BROKER_UNAVAILABLE, TopicGuard, make_consumer, stop_consumer
from services.common.records import Message
from services.common.serde.avro import DecodeError
from services.common.settings import AGENCY_ID, Settings
from services.common.validation import event_problems
from services.ingest.formats.hmpps.mapper import Unmappable, map_event
from services.ingest.formats.hmpps.mapping import Mapping
from services.ingest.formats.hmpps.metrics import HmppsMetrics
from services.ingest.handlers import Gateway, publish_events

log = structlog.get_logger("joinedup.ingest.hmpps")
STAGE: Final = HMPPS_INTAKE
TOPIC_WORD: Final = "hmpps-domain-events"
#: publish outcomes that leave the message dealt with ("conflict": the key was accepted
#: with other details, i.e. this is a second report of the same fact)
_DONE: Final = {"accepted": "accepted", "already_accepted": "copy", "conflict": "repeat"}


def hmpps_topic(settings: Settings, agency: str) -> str:
    if not AGENCY_ID.match(agency):
        raise ValueError("an agency id is 1-63 lower-case letters, digits and inner hyphens")
    return f"{settings.topic_prefix}.{TOPIC_WORD}.{agency}"


def agency_of(topic: str) -> str | None:
    _, found, agency = topic.rpartition(f".{TOPIC_WORD}.")
    return agency if found and AGENCY_ID.match(agency) else None


class NotWritten(Exception):  # noqa: N818 - a state, retried
    """Some mapped events were not written (broker or receipts unavailable): read again."""


class HmppsIntake:
    def __init__(self, settings: Settings, gateway: Gateway, producer: AIOKafkaProducer,
                 mapping: Mapping, metrics: HmppsMetrics) -> None:
        self._settings = settings
        self._gateway = gateway
        self._mapping = mapping
        self._metrics = metrics
        self._dead_letters = DeadLetterTopic(producer, settings.topics.dead_letter,
                                             TopicGuard(producer))
        self._secret = settings.message_key_secret.get_secret_value().encode()
        #: the offset this intake last committed, per partition (see ``_replaced``)
        self._committed: dict[TopicPartition, int] = {}

    def consumer(self) -> AIOKafkaConsumer:
        s = self._settings
        consumer = make_consumer(
            s, group_id=s.hmpps_group or f"{s.processor_group}-hmpps",
            enable_auto_commit=False, auto_offset_reset="earliest",
            metadata_max_age_ms=s.kafka_metadata_max_age_ms,
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms)
        consumer.subscribe(pattern=f"^{re.escape(s.topic_prefix)}\\.{TOPIC_WORD}\\.[a-z0-9-]+$")
        return consumer

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping`` is set; a failure backs off and reads the batch again."""
        consumer = self.consumer()
        backoff = Backoff(self._settings.retry_initial_seconds, self._settings.retry_max_seconds)
        started = False
        while not stopping.is_set():
            batch: Map[TopicPartition, Sequence[Any]] = {}
            try:
                if not started:
                    await consumer.start()
                    started = True
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                if batch and await self._replaced(consumer, batch):
                    continue
                if batch:
                    await self.take(batch)
                    offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
                    await consumer.commit(offsets)
                    self._committed.update(offsets)
                backoff.reset()
            except Exception as exc:  # noqa: BLE001 - retried, never skipped (see the docstring)
                expected = isinstance(exc, (NotWritten, *DATABASE_UNAVAILABLE,
                                            *BROKER_UNAVAILABLE))
                (log.warning if expected else log.error)(
                    "hmpps intake: batch not finished; reading it again",
                    error=type(exc).__name__)
                for tp, records in batch.items():
                    consumer.seek(tp, records[0].offset)
                await _pause(stopping, backoff.next())
        if started:
            await stop_consumer(consumer)

    async def _replaced(self, consumer: AIOKafkaConsumer,
                        batch: Map[TopicPartition, Sequence[Any]]) -> bool:
        """Whether the broker forgot an offset this intake committed (a broker restarted on
        memory storage comes back with empty topics and no group offsets). The consumer then
        goes on fetching from its old position in the new log: once a delivery is written
        past it, the records before it were skipped (an accepted notification was never
        mapped). Such a partition is read again from its start, the rest of the batch from
        where it began; receipts make anything mapped before a copy."""
        lost = [tp for tp in batch if tp in self._committed
                and await consumer.committed(tp) is None]
        if not lost:
            return False
        log.error("hmpps intake: the broker no longer holds the committed offsets (the log "
                  "was replaced); reading the partitions again from their start",
                  partitions=[f"{tp.topic}[{tp.partition}]" for tp in lost])
        for tp, records in batch.items():
            if tp not in lost:
                consumer.seek(tp, records[0].offset)
        for tp in lost:
            del self._committed[tp]
        await consumer.seek_to_beginning(*lost)
        return True

    async def take(self, batch: Map[TopicPartition, Sequence[Any]]) -> None:
        """Map, publish and park one batch; raises NotWritten if anything must be retried."""
        now = datetime.now(UTC)
        tolerance = timedelta(seconds=self._settings.api_future_tolerance_seconds)
        by_agency: dict[str, list[tuple[Message, AgencyEvent, str]]] = defaultdict(list)
        parked: list[Rejected] = []
        for records in batch.values():
            for record in records:
                message = Message.of(record)
                agency = agency_of(message.topic)
                assert agency is not None  # the subscription pattern
                result = map_event(message.value or b"", agency, self._mapping, self._secret)
                if isinstance(result, Unmappable):
                    parked.append(_rejected(message, agency, result.reason, result.kind))
                    if result.kind == "unmapped":
                        self._metrics.unmapped.labels(result.hmpps_type).inc()
                    continue
                problems = event_problems(result.event, now, tolerance)
                if problems:
                    reason = "refused: " + "; ".join(str(p) for p in problems)
                    parked.append(_rejected(message, agency, reason, "refused"))
                else:
                    by_agency[agency].append((message, result.event, result.hmpps_type))
        await self._publish(by_agency)
        await self._park(parked)

    async def _publish(self, by_agency: dict[str, list[tuple[Message, AgencyEvent, str]]]
                       ) -> None:
        retry = False
        for agency, items in by_agency.items():
            outcomes = await publish_events(self._gateway, agency, [e for _, e, _ in items])
            for (_, event, hmpps_type), outcome in zip(items, outcomes, strict=True):
                done = _DONE.get(outcome.status)
                if done is None:
                    retry = True
                    continue
                self._metrics.events.labels(agency, done).inc()
                log.info("hmpps event published", agency=agency, hmpps_type=hmpps_type,
                         event_id=event.event_id, outcome=done)
        if retry:
            raise NotWritten()

    async def _park(self, parked: list[Rejected]) -> None:
        if not parked:
            return
        landed = await self._dead_letters.park(parked)
        async with self._gateway.pool.acquire() as conn:
            await record_dead_letters(conn, landed)
        for letter in landed:
            self._metrics.events.labels(letter.agency or "", "parked").inc()
            log.warning("hmpps event parked", agency=letter.agency, topic=letter.topic,
                        partition=letter.partition, offset=letter.offset, reason=letter.reason)


def _rejected(message: Message, agency: str, reason: str, kind: str) -> Rejected:
    error = DecodeError if kind == "invalid" and reason.startswith("invalid: the message") \
        else Refused
    rejected = Rejected.of(message, reason, STAGE, error)
    return dataclasses.replace(rejected, parked=dataclasses.replace(
        rejected.parked, agency=agency, exception_class=class_name(error)))


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
