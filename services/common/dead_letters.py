"""Parking unreadable or refused messages on the dead-letter topic, with the reason, and
recording them in PostgreSQL (where the message was and where its copy is, never the content).

The copy keeps the original key, bytes, headers and timestamp, so it can be re-driven once the
cause is fixed (``services/operations/dead_letters.py``), and adds the error headers Kafka
Connect's dead-letter queue adds (``errors.deadletterqueue.context.headers.enable``), so tools
that read a Connect DLQ read ours: ``__connect.errors.topic``, ``.partition``, ``.offset``,
``.connector.name``, ``.task.id``, ``.stage``, ``.class.name``, ``.exception.class.name``,
``.exception.message``, plus our own ``joinedup-reason`` and ``joinedup-parked-at``. No stack
trace header: a traceback can carry what a library echoed of a value. The reasons name fields
and rules, never values, so the exception message carries no personal data.

Publishing waits for acks=all before the batch's position is recorded, so a parked message is
never lost; ``park`` returns each message's record with where its copy landed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import asyncpg
from aiokafka import AIOKafkaProducer

from projections.queries import dead_letters as sql
from services.common.kafka import TopicGuard
from services.common.records import Message
from services.common.serde.avro import DecodeError
from services.common.settings import AGENCY_ID

#: Kafka Connect's context header names (DeadLetterQueueReporter), exactly.
PREFIX: Final = "__connect.errors."
TOPIC: Final = PREFIX + "topic"
PARTITION: Final = PREFIX + "partition"
OFFSET: Final = PREFIX + "offset"
CONNECTOR_NAME: Final = PREFIX + "connector.name"
TASK_ID: Final = PREFIX + "task.id"
STAGE: Final = PREFIX + "stage"
EXECUTING_CLASS: Final = PREFIX + "class.name"
EXCEPTION_CLASS: Final = PREFIX + "exception.class.name"
EXCEPTION_MESSAGE: Final = PREFIX + "exception.message"
#: ours: the reason (the same text as the exception message) and when it was parked
REASON: Final = "joinedup-reason"
PARKED_AT: Final = "joinedup-parked-at"
#: set on a re-driven copy: the dead letter it was re-driven from (a new parking links to it)
REDRIVE_OF: Final = "joinedup-redrive-of"
_PARKING_HEADERS: Final = (REASON, PARKED_AT)


class Refused(Exception):  # noqa: N818 - named for what happened, as Connect shows it
    """A message a check refused (ownership, registration, the contract). Nothing raises
    it: its name is the ``exception.class.name`` of a refusal, as a decode failure's is
    ``DecodeError``."""


@dataclass(frozen=True, slots=True)
class Stage:
    """Where in joinedup a message was parked (Connect's connector name, and the class
    that was running, its ``class.name``)."""
    name: str
    executing_class: str


ADMISSION: Final = Stage("admission", "services.admission.handler.Admission")
INTAKE: Final = Stage("intake", "services.processor.pipeline.BatchProcessor")
ALERT_PROJECTION: Final = Stage("alert-projector", "services.alerts.projector.AlertProjector")
HMPPS_INTAKE: Final = Stage("hmpps-intake", "services.ingest.formats.hmpps.intake.HmppsIntake")
STAGES: Final = {s.name: s for s in (ADMISSION, INTAKE, ALERT_PROJECTION, HMPPS_INTAKE)}


def class_name(error: type[BaseException]) -> str:
    return f"{error.__module__}.{error.__qualname__}"


@dataclass(frozen=True, slots=True)
class Parked:
    topic: str
    partition: int
    offset: int
    reason: str
    stage: str = ""
    exception_class: str = ""
    agency: str | None = None              # whose message it is, when a topic says so
    timestamp: int = -1                    # the original record's, in ms (<= 0: unknown)
    redrive_of: int | None = None          # the dead letter this message was re-driven from
    copy_partition: int | None = None      # where the copy landed on the dead-letter topic
    copy_offset: int | None = None
    parked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    parked: Parked
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, message: Message, reason: str, stage: Stage,
           error: type[BaseException] | None = None) -> Rejected:
        """A consumed message refused or failed at `stage`, with its headers and time."""
        if error is None:
            error = DecodeError if reason.startswith("undecodable") else Refused
        headers = dict(message.headers)
        origin = headers.get("joinedup-origin-topic", b"").decode(errors="replace")
        parked = Parked(
            message.topic, message.partition, message.offset, reason, stage.name,
            class_name(error), agency_of_topic(message.topic) or agency_of_topic(origin),
            message.timestamp, _whole(headers.get(REDRIVE_OF)))
        return cls(parked, message.key, message.value, message.headers)


def agency_of_topic(topic: str) -> str | None:
    """The agency whose topic (``<prefix>.agency-events.<agency>``) this is, or None."""
    _, found, agency = topic.rpartition(".agency-events.")
    return agency if found and AGENCY_ID.match(agency) else None


def reason_kind(reason: str) -> str:
    """The kind of a reason (its words before the first colon: ``undecodable``, ``invalid``,
    ``refused``, ``processing failed``...): few values, for a metric label; the full reason
    can name a field or a schema fingerprint."""
    return reason.split(":", 1)[0].strip()


def original_headers(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A message's own headers, without those a parking added (or a publisher forged)."""
    return [(k, v) for k, v in headers if not k.startswith(PREFIX) and k not in _PARKING_HEADERS]


def error_headers(parked: Parked, at: datetime) -> list[tuple[str, bytes]]:
    """The headers a parking adds, in Kafka Connect's convention (values UTF-8 text)."""
    stage = STAGES.get(parked.stage)
    connect_stage = ("VALUE_CONVERTER" if parked.exception_class == class_name(DecodeError)
                     else "TASK_PUT")
    values = [
        (TOPIC, parked.topic), (PARTITION, str(parked.partition)),
        (OFFSET, str(parked.offset)), (CONNECTOR_NAME, parked.stage or "joinedup"),
        (TASK_ID, "0"), (STAGE, connect_stage),
        (EXECUTING_CLASS, stage.executing_class if stage else ""),
        (EXCEPTION_CLASS, parked.exception_class or class_name(Refused)),
        (EXCEPTION_MESSAGE, parked.reason), (REASON, parked.reason),
        (PARKED_AT, at.isoformat()),
    ]
    return [(k, v.encode()) for k, v in values]


def _whole(value: bytes | None) -> int | None:
    """A dead letter's id from a header, if it can be one (a publisher writes headers: a
    number PostgreSQL's bigint cannot hold must not fail the batch that records it)."""
    try:
        number = int(value.decode("ascii")) if value is not None else None
    except (UnicodeDecodeError, ValueError):
        return None
    return number if number is not None and 0 < number < 2**63 else None


class DeadLetterTopic:
    def __init__(self, producer: AIOKafkaProducer, topic: str,
                 guard: TopicGuard | None = None) -> None:
        self._producer = producer
        self._topic = topic
        self._guard = guard

    async def park(self, rejected: Sequence[Rejected]) -> list[Parked]:
        """Each message copied onto the dead-letter topic (acknowledged by every in-sync
        replica); its record, with where the copy is, for ``record_dead_letters``."""
        if not rejected:
            return []
        if self._guard is not None:
            await self._guard.require([self._topic])
        now = datetime.now(UTC)
        sends = [
            await self._producer.send(
                self._topic, value=r.value, key=r.key,
                timestamp_ms=r.parked.timestamp if r.parked.timestamp > 0 else None,
                headers=[*original_headers(r.headers), *error_headers(r.parked, now)])
            for r in rejected
        ]
        landed = await asyncio.gather(*sends)
        return [dataclasses.replace(r.parked, copy_partition=m.partition, copy_offset=m.offset,
                                    parked_at=now)
                for r, m in zip(rejected, landed, strict=True)]


async def record_dead_letters(conn: asyncpg.Connection, parked: Sequence[Parked]) -> None:
    if parked:
        await conn.execute(
            sql.RECORD_DEAD_LETTERS, [p.topic for p in parked], [p.partition for p in parked],
            [p.offset for p in parked], [p.reason for p in parked],
            [p.stage or None for p in parked], [p.exception_class or None for p in parked],
            [p.agency for p in parked],
            [_moment(p.timestamp) for p in parked], [p.redrive_of for p in parked],
            [p.copy_partition for p in parked], [p.copy_offset for p in parked])


def _moment(millis: int) -> datetime | None:
    """The record's time, if it is one (the publisher sets it: a time past year 9999 must
    not fail the batch that records its parking)."""
    try:
        return datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None  # 0: unknown
    except (OverflowError, ValueError, OSError):
        return None
