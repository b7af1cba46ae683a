"""Dead letters for operations staff: list, show, re-drive and purge, each one audited.

* **list**: the recorded dead letters (``dead_letter``), filtered by reason (contains),
  source (agency or topic), stage, time parked and status (open, redriven, purged).
* **show**: one dead letter with its copy read back from the dead-letter topic: the original
  headers and the error headers apart, and the bytes decoded with the one serde where they can
  be (``describe``), else hex and base64 and why not.
* **redrive**: the copy's key, bytes and original headers sent back to the topic it was parked
  from, so it goes through the stage that refused it again (admission, the intake or the alert
  projector) once the cause is fixed. The archive and the alert history recognise an event
  they hold already, so it reaches the read models once, however often it is sent. If it
  fails again it is parked again: a new dead letter that links to this one (``redrive_of``).
* **purge**: marks a dead letter dealt with, by whom and why. Nothing is deleted: Kafka
  records cannot be deleted from an infinite-retention topic, and the copy stays there.

Every action (refusals too) is a row in ``access_audit`` (``dead_letter.<action>``), naming a
person only when the message says who (a person-events message is keyed by the person id).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, NoReturn, TypeVar

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import OffsetOutOfRangeError
from aiokafka.structs import RecordMetadata

from projections.queries import dead_letters as sql
from services.common import dead_letters as parking
from services.common.kafka import BROKER_UNAVAILABLE, TopicGuard, make_consumer, make_producer, stop_consumer
from services.common.records import Message
from services.common.serde.agency_event import decode_event
from services.common.serde.agency_json import event_to_json
from services.common.serde.avro import (
    MAGIC,
    AvroCodec,
    DecodeError,
    agency_codec,
    alert_codec,
    governance_codec,
    identity_codec,
)
from services.common.settings import Settings
from services.reads.adapters import audit_log
from services.reads.domain.audit import Caller, action_record
from services.reads.lookup import ReadRefused

STATUSES: Final = ("open", "redriven", "purged", "all")
PURPOSE: Final = "investigation"
READ_BACK_SECONDS: Final = 10.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Filter:
    reason: str | None = None
    source: str | None = None      # an agency id or a topic
    stage: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str = "open"
    limit: int = 50

    def audited(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Content:
    form: str                       # "avro" (schema named), "json" or "raw" (not decoded)
    schema: str | None
    decoded: Any                    # None when not decoded
    note: str | None                # why it was not (or only partly) decoded
    hex: str
    base64: str


@dataclass(frozen=True, slots=True)
class Shown:
    letter: dict[str, Any]
    key: str | None                 # UTF-8 where it is (keys are opaque), else hex
    timestamp: datetime | None
    headers: list[tuple[str, str]]  # the message's own
    error_headers: list[tuple[str, str]]
    content: Content | None
    problem: str | None             # why the copy could not be read back


def describe(value: bytes | None) -> Content:
    """A message's bytes as an operator can read them."""
    if value is None:
        return Content("raw", None, None, "no value (a tombstone)", "", "")
    raw = (value.hex(), base64.b64encode(value).decode())
    if value[:2] == MAGIC or _confluent(value):
        return _avro(value, raw)
    try:
        return Content("json", None, json.loads(value.decode("utf-8")), None, *raw)
    except (UnicodeDecodeError, ValueError):
        return Content("raw", None, None, "neither Avro (no C3 01 single-object marker, no "
                       "Confluent schema id joinedup knows) nor UTF-8 JSON", *raw)


def _confluent(value: bytes) -> bool:
    """Confluent's wire format (magic byte 0, a schema id) with an id one of ours wrote."""
    return value[:1] == b"\x00" and any(
        c.wrote(value) for c in (agency_codec(), alert_codec(), identity_codec(),
                                 governance_codec()))


def _avro(value: bytes, raw: tuple[str, str]) -> Content:
    codecs: list[AvroCodec] = [agency_codec(), alert_codec(), identity_codec(),
                               governance_codec()]
    codec = next((c for c in codecs if c.wrote(value)), None)
    if codec is None:
        return Content("raw", None, None, "Avro single-object encoding with an unknown schema "
                       f"fingerprint {bytes(value[2:10]).hex()}", *raw)
    writer = codec.writer_version(value)
    schema = f"{writer.family} v{writer.version}"
    note = None
    if codec is agency_codec():
        try:  # the event as the gateway's JSON body: what an integrator would have sent
            return Content("avro", schema, event_to_json(decode_event(value)), None, *raw)
        except (DecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
            why = exc if isinstance(exc, DecodeError) else type(exc).__name__
            note = f"not a valid event ({why}); the record as written"
    try:
        return Content("avro", schema, plain(codec.decode(value)), note, *raw)
    except DecodeError as exc:
        return Content("raw", schema, None, f"{schema}: {exc}", *raw)


def plain(value: Any) -> Any:
    """A value as JSON holds it (times in ISO 8601, bytes in hex)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + value.hex()


def redrive_headers(headers: list[tuple[str, bytes]], letter_id: int) -> list[tuple[str, bytes]]:
    """The original headers, and which dead letter this copy is re-driven from."""
    own = [(k, v) for k, v in parking.original_headers(headers) if k != parking.REDRIVE_OF]
    return [*own, (parking.REDRIVE_OF, str(letter_id).encode())]


def status(letter: dict[str, Any]) -> str:
    return ("purged" if letter["purged_at"] is not None
            else "redriven" if letter["redriven_at"] is not None else "open")


def _letter(row: asyncpg.Record) -> dict[str, Any]:
    letter = dict(row)
    letter["status"] = status(letter)
    return letter


def actor(caller: Caller) -> str:
    """Who acted, as the dead letter records it (the audit row has the rest)."""
    if caller.kind == "operator":
        return caller.operator or ""
    return f"{caller.kind}:{caller.reader.practitioner or caller.reader.agency}"


class DeadLetters:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    async def list(self, caller: Caller, wanted: Filter) -> list[dict[str, Any]]:
        if wanted.status not in STATUSES:
            raise ReadRefused("invalid", f"status is one of {', '.join(STATUSES)}")
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(sql.LIST, wanted.reason, wanted.source, wanted.stage,
                                    wanted.since, wanted.until, wanted.status, wanted.limit)
            await self._audit(conn, caller, "list", None, "ok",
                              {"filter": wanted.audited(), "listed": len(rows)})
        return [_letter(r) for r in rows]

    async def show(self, caller: Caller, letter_id: int) -> Shown:
        letter = await self._find(caller, "show", letter_id)
        problem, message = await self._read_copy(letter)
        async with self._pool.acquire() as conn:
            await self._audit(conn, caller, "show", self._person(letter, message), "ok",
                              {"dead_letter": letter_id, "read_back": problem is None})
        if message is None:
            return Shown(letter, None, None, [], [], None, problem)
        headers = list(message.headers)
        own = parking.original_headers(headers)
        return Shown(
            letter, _text(message.key), _moment(message.timestamp),
            [(k, _text(v) or "") for k, v in own],
            [(k, _text(v) or "") for k, v in headers if (k, v) not in own],
            describe(message.value), None)

    async def redrive(self, caller: Caller, letter_id: int, reason: str) -> dict[str, Any]:
        """Send the copy back to where it was parked from; record it and where it went."""
        letter = await self._find(caller, "redrive", letter_id)
        try:
            problem, message = await self._read_copy(letter, broker_silent_is_a_problem=False)
        except BROKER_UNAVAILABLE as exc:
            await self._unavailable(caller, letter_id, exc)
        if message is None:
            await self._refuse(caller, "redrive", letter_id, problem or "")
        assert message is not None
        producer = make_producer(self._settings)
        try:
            await _broker(producer.start())
            async with self._pool.acquire() as conn, conn.transaction():
                held = _letter(await conn.fetchrow(sql.ONE_FOR_UPDATE, letter_id))
                if held["status"] != "open":  # someone else dealt with it meanwhile
                    raise ReadRefused("conflict", _dealt_with(held))
                # Recorded only once the broker acknowledged the copy. Should PostgreSQL fail
                # after that, the copy is on the topic unrecorded and the letter still open:
                # re-driven again, a second copy goes, and the archive applies it once.
                await _broker(TopicGuard(producer).require([held["topic"]]))
                sent = await _broker(_acknowledged(producer.send(
                    held["topic"], message.value, key=message.key,
                    headers=redrive_headers(list(message.headers), letter_id))))
                await conn.execute(sql.MARK_REDRIVEN, letter_id, actor(caller), reason,
                                   sent.partition, sent.offset)
                await self._audit(conn, caller, "redrive", self._person(held, message), "ok",
                                  {"dead_letter": letter_id, "reason": reason,
                                   "to": {"topic": held["topic"], "partition": sent.partition,
                                          "offset": sent.offset}})
        except _BrokerSilent as silent:  # the transaction rolled back: nothing recorded
            await self._unavailable(caller, letter_id, silent.cause)
        finally:
            await _quietly(producer.stop())
        return _letter(await self._pool.fetchrow(sql.ONE, letter_id))

    async def purge(self, caller: Caller, letter_id: int, reason: str) -> dict[str, Any]:
        """Mark it dealt with (the record stays on the topic: it cannot be deleted)."""
        await self._find(caller, "purge", letter_id)
        async with self._pool.acquire() as conn, conn.transaction():
            held = _letter(await conn.fetchrow(sql.ONE_FOR_UPDATE, letter_id))
            if held["status"] == "purged":
                raise ReadRefused("conflict", _dealt_with(held))
            await conn.execute(sql.MARK_PURGED, letter_id, actor(caller), reason)
            await self._audit(conn, caller, "purge", None, "ok",
                              {"dead_letter": letter_id, "reason": reason})
        return _letter(await self._pool.fetchrow(sql.ONE, letter_id))

    async def _find(self, caller: Caller, action: str, letter_id: int) -> dict[str, Any]:
        row = await self._pool.fetchrow(sql.ONE, letter_id)
        if row is None:
            async with self._pool.acquire() as conn:
                await self._audit(conn, caller, action, None, "not_found",
                                  {"dead_letter": letter_id})
            raise ReadRefused("not_found", f"no dead letter {letter_id}")
        letter = _letter(row)
        if ((action == "redrive" and letter["status"] != "open")
                or (action == "purge" and letter["status"] == "purged")):
            await self._refuse(caller, action, letter_id, _dealt_with(letter))
        return letter

    async def _unavailable(self, caller: Caller, letter_id: int, exc: BaseException) -> NoReturn:
        """The broker did not answer: nothing recorded, the caller retries (503)."""
        why = (f"the broker did not answer ({type(exc).__name__}); the re-drive is not "
               "recorded: retry")
        async with self._pool.acquire() as conn:
            await self._audit(conn, caller, "redrive", None, "unavailable",
                              {"dead_letter": letter_id, "why": why})
        raise ReadRefused("unavailable", why)

    async def _refuse(self, caller: Caller, action: str, letter_id: int, why: str) -> None:
        async with self._pool.acquire() as conn:
            await self._audit(conn, caller, action, None, "refused",
                              {"dead_letter": letter_id, "why": why})
        raise ReadRefused("conflict", why)

    async def _audit(self, conn: asyncpg.Connection, caller: Caller, action: str,
                     person: str | None, outcome: str, detail: dict[str, Any]) -> None:
        await audit_log.write(conn, action_record(caller, f"dead_letter.{action}", person,
                                                  PURPOSE, outcome, detail))

    def _person(self, letter: dict[str, Any], message: Message | None) -> str | None:
        """The person a message is about, when it says so: person-events are keyed by the
        opaque person id (agency topics by a keyed hash, which names nobody)."""
        if message is None or message.key is None:
            return None
        if letter["topic"] != self._settings.topics.person_events:
            return None
        try:
            return str(uuid.UUID(message.key.decode()))
        except (UnicodeDecodeError, ValueError):
            return None

    async def _read_copy(self, letter: dict[str, Any], *, broker_silent_is_a_problem: bool = True
                         ) -> tuple[str | None, Message | None]:
        """The copy on the dead-letter topic, checked against what was recorded (a replaced
        log would hold another record there), or why it cannot be read. A broker that does
        not answer is one such why, unless `broker_silent_is_a_problem` is False: then it
        raises (one of BROKER_UNAVAILABLE), for the caller to retry."""
        if letter["copy_offset"] is None:
            return "where its copy is was not recorded (parked before migration 0016)", None
        try:
            found = await _read_one(self._settings, letter["copy_partition"],
                                    letter["copy_offset"])
        except BROKER_UNAVAILABLE as exc:
            if not broker_silent_is_a_problem:
                raise
            return f"the broker did not answer ({type(exc).__name__})", None
        if found is None:
            return "its copy is no longer on the dead-letter topic (the log was replaced)", None
        headers = dict(found.headers)
        said = (_text(headers.get(parking.TOPIC)), _text(headers.get(parking.PARTITION)),
                _text(headers.get(parking.OFFSET)))
        if said != (letter["topic"], str(letter["partition"]), str(letter["kafka_offset"])):
            return "the record at its copy's position is another message (log replaced)", None
        return None, found


class _BrokerSilent(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause


async def _broker(step: Awaitable[T]) -> T:
    """A step on the broker: not answering (BROKER_UNAVAILABLE) is _BrokerSilent, so that it
    is not taken for PostgreSQL's OSError or TimeoutError."""
    try:
        return await step
    except BROKER_UNAVAILABLE as exc:
        raise _BrokerSilent(exc) from exc


async def _acknowledged(sending: Awaitable[asyncio.Future[RecordMetadata]]) -> RecordMetadata:
    return await (await sending)


async def _quietly(stopping: Awaitable[None]) -> None:
    """Stop a client; one that cannot reach the broker has nothing left to lose."""
    with contextlib.suppress(*BROKER_UNAVAILABLE):
        await stopping


async def _read_one(settings: Settings, partition: int, offset: int) -> Message | None:
    """The record at `offset` of the dead-letter topic, or None if the log has no such
    record (Tansu answers a fetch past the end with nothing; the high watermark tells)."""
    tp = TopicPartition(settings.topics.dead_letter, partition)
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none", fetch_max_wait_ms=100)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + READ_BACK_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            try:
                fetched = await consumer.getmany(tp, timeout_ms=200, max_records=1)
            except OffsetOutOfRangeError:  # Apache Kafka's answer: not in the log
                return None
            for record in fetched.get(tp, []):
                return Message.of(record) if record.offset == offset else None
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater <= offset:
                return None
        raise TimeoutError("reading the dead-letter topic")
    finally:
        await stop_consumer(consumer)


def _moment(millis: int) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, UTC) if millis >= 0 else None


def _dealt_with(letter: dict[str, Any]) -> str:
    if letter["purged_at"] is not None:
        return f"dead letter {letter['id']} was purged at {letter['purged_at']:%Y-%m-%d %H:%M}"
    again = letter.get("parked_again_as")
    at = f"{letter['redriven_at']:%Y-%m-%d %H:%M}"
    return (f"dead letter {letter['id']} was re-driven at {at}"
            + (f"; it was parked again as {again}" if again else ""))
