"""Where a read model catching up reads its events: the event archive or the Kafka log.

Both answer the same question, "the next events of this partition after this position, in
the order the live pipeline applied them", so the catch-up (and a rebuild, which is a
catch-up into a shadow schema) runs the same batch code over either:

- the **archive** holds exactly the events the live pipeline applied, once each, numbered
  in the order it applied them (``seq``): dependable, and it spans a replaced log;
- the **log** is the Kafka topic itself, read from offset 0 up to where the live pipeline
  stands. It holds everything that came, so its batches go through the live pipeline's own
  decisions again: what the live pipeline parked is skipped (the dead-letter table lists it),
  every other message must decode and pass the checks, and the archive step tells new events
  from copies. That archive is the shadow's own ``event_archive`` (a rebuild from the log
  rebuilds the archive too, and ``--check`` compares it with the live one).

A position is the source's own: an archive ``seq`` (the last applied) or a log offset (the
next to read). Each read model stores it in ``read_model_position`` (``archive_seq`` or
``log_offset``), in the transaction that applies the events.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from projections.queries import read_models as sql
from services.common.kafka import make_consumer, stop_consumer
from services.common.records import Message
from services.common.serde.agency_event import read_event
from services.common.serde.avro import identity_codec
from services.common.settings import Settings
from services.common.validation import message_refusal
from services.processor.adapters import store
from services.processor.adapters.store import Received
from services.processor.opening import Opener, people_of


@dataclass(frozen=True, slots=True)
class Chunk:
    """One read: the new events, each with the position a read model stands at once it has
    applied it, and the position reached (None: nothing was left to read)."""

    events: list[tuple[int, Received]]
    reached: int | None


class Source(Protocol):
    #: the query that records a read model's position in this source
    CAUGHT_UP: ClassVar[str]
    #: whether read models may stand at different positions while reading together (the
    #: log's copies are told apart by one archive for all of them: they may not)
    positions_may_differ: ClassVar[bool]

    def position(self, row: asyncpg.Record) -> int:
        """A read model's position in this source, from its ``read_model_position`` row."""

    async def read(self, conn: asyncpg.Connection, partition: int, after: int,
                   limit: int) -> Chunk: ...

    async def more(self, conn: asyncpg.Connection, partition: int, after: int,
                   consumer_next: int | None) -> bool:
        """Whether anything the live pipeline applied lies after ``after`` (asked with the
        consumer's row locked, so the answer holds until the transaction ends)."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ArchiveSource:
    """One partition's archive, in the order the live pipeline applied it."""

    topic: str
    #: opens the archived (sealed) events for the read models
    opener: Opener
    CAUGHT_UP: ClassVar[str] = sql.CAUGHT_UP_TO
    positions_may_differ: ClassVar[bool] = True

    def position(self, row: asyncpg.Record) -> int:
        return int(row["archive_seq"])

    async def read(self, conn: asyncpg.Connection, partition: int, after: int,
                   limit: int) -> Chunk:
        """An archived body is one the live pipeline decoded and checked: one that no longer
        decodes (a schema removed since) is a bug to stop on, never to skip."""
        rows = await conn.fetch(sql.ARCHIVE_AFTER, self.topic, partition, after, limit)
        archived = [self.received(row, partition) for row in rows]
        opened = await self.opener.events(conn, [r.event for r in archived])
        events = [(row["seq"], dataclasses.replace(r, event=e))
                  for row, r, e in zip(rows, archived, opened, strict=True)]
        return Chunk(events, events[-1][0] if events else None)

    def received(self, row: asyncpg.Record, partition: int) -> Received:
        """The archived event, filed under the person the archive holds it for (a regroup
        refiles it when records are linked or separated)."""
        event, reason = read_event(row["body"])
        if event is None:
            raise RuntimeError(f"archived event at seq {row['seq']} no longer decodes: "
                               f"{reason}")
        return Received(event.for_person(row["person_key"]), row["body"], self.topic,
                        partition, row["kafka_offset"])

    async def more(self, conn: asyncpg.Connection, partition: int, after: int,
                   consumer_next: int | None) -> bool:
        return bool(await conn.fetchval(sql.ARCHIVE_HAS_MORE, self.topic, partition, after))

    async def close(self) -> None:
        pass


class LogDiffers(RuntimeError):
    """The log no longer holds what the live pipeline applied: rebuild from the archive."""


@dataclass
class LogSource:
    """One partition's Kafka log, up to where the live pipeline (``consumer``) stands."""

    topic: str
    consumer: str
    settings: Settings  # the cluster and how to reach it
    opener: Opener
    #: how long a read may wait for records the broker has (below the consumer's position)
    read_timeout: float = 30.0
    CAUGHT_UP: ClassVar[str] = sql.CAUGHT_UP_IN_LOG
    positions_may_differ: ClassVar[bool] = False
    _kafka: AIOKafkaConsumer | None = field(default=None, repr=False)
    _assigned: int | None = field(default=None, repr=False)
    _next: int | None = field(default=None, repr=False)  # the fetch position, when known

    def position(self, row: asyncpg.Record) -> int:
        return int(row["log_offset"])

    async def read(self, conn: asyncpg.Connection, partition: int, after: int,
                   limit: int) -> Chunk:
        consumer = await conn.fetchrow(sql.CONSUMER_AT, self.consumer, self.topic, partition)
        until = consumer["next_offset"] if consumer is not None else 0
        if after >= until:
            return Chunk([], None)
        messages = await self._fetch(partition, after, min(until, after + limit))
        last = messages[-1]
        if (last.offset == until - 1 and consumer["anchor_digest"] is not None
                and last.digest != consumer["anchor_digest"]):
            raise LogDiffers(f"partition {partition}: the record at offset {last.offset} is "
                             f"not the one the live pipeline applied there")
        parked = {r["kafka_offset"] for r in await conn.fetch(
            sql.PARKED_BETWEEN, self.topic, partition, after, last.offset + 1)}
        # identity changes: the person index already holds their outcome, and each event
        # below is filed under the person it resolves to now
        # a message sealed by an identity decision that rolled back: the live pipeline
        # skipped it (admission forwarded the event again, decided afresh)
        checked = [r for r in await self.opener.received(conn, [
            self._checked(m) for m in messages
            if m.offset not in parked and not identity_codec().wrote(m.value)])
            if r is not None]
        people = await people_of(conn, [r.event for r in checked])
        if None in people:
            raise LogDiffers(f"partition {partition}: an event the person index does not "
                             f"hold, which the live pipeline applied")
        checked = [dataclasses.replace(r, event=r.event.for_person(p))
                   for r, p in zip(checked, people, strict=True) if p is not None]
        archived = await store.archive(conn, checked, self.opener)
        if archived.clashes:
            raise LogDiffers(f"partition {partition}: an event id reused for another event "
                             f"at offset {archived.clashes[0].offset}, which the live "
                             f"pipeline did not park")
        return Chunk([(r.offset + 1, r) for r in archived.fresh], last.offset + 1)

    async def more(self, conn: asyncpg.Connection, partition: int, after: int,
                   consumer_next: int | None) -> bool:
        return consumer_next is not None and after < consumer_next

    async def close(self) -> None:
        if self._kafka is not None:
            await stop_consumer(self._kafka)
            self._kafka = None

    def _checked(self, m: Message) -> Received:
        """What the live pipeline applied decoded and passed the checks; anything else it
        parked. A message that fails them here yet was not parked means another log."""
        event, reason = read_event(m.value)
        if event is not None:
            reason = message_refusal(event, m.key)
        if event is None or reason is not None or m.value is None:
            raise LogDiffers(f"partition {m.partition}: the message at offset {m.offset} is "
                             f"refused ({reason}) but the live pipeline did not park it")
        return Received(event, m.value, m.topic, m.partition, m.offset)

    async def _fetch(self, partition: int, start: int, end: int) -> list[Message]:
        """The records at offsets [start, end), at least one; they exist (the live pipeline
        applied them), so a read that finds none in ``read_timeout`` is an error."""
        kafka = await self._started()
        tp = TopicPartition(self.topic, partition)
        if self._assigned != partition:
            kafka.assign([tp])
            self._assigned, self._next = partition, None
        if self._next != start:
            kafka.seek(tp, start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout
        while True:
            try:
                fetched = await kafka.getmany(tp, timeout_ms=500, max_records=end - start)
            except OffsetOutOfRangeError as exc:
                raise LogDiffers(f"partition {partition}: offset {start} is out of the "
                                 f"log's range (the log was replaced)") from exc
            records = [Message.of(r) for r in fetched.get(tp, ())]
            if records:
                break
            if loop.time() > deadline:
                raise TimeoutError(f"partition {partition}: nothing read at offset {start} "
                                   f"in {self.read_timeout:.0f} s")
        inside = [m for m in records if start <= m.offset < end]
        # records beyond `end` were taken from the consumer's buffer: seek next time
        self._next = records[-1].offset + 1 if len(inside) == len(records) else None
        if not inside:
            raise LogDiffers(f"partition {partition}: no record between offsets {start} "
                             f"and {end} (the log was replaced)")
        return inside

    async def _started(self) -> AIOKafkaConsumer:
        if self._kafka is None:
            self._kafka = make_consumer(
                self.settings, group_id=None, enable_auto_commit=False,
                auto_offset_reset="none", fetch_max_wait_ms=100,
                max_partition_fetch_bytes=4 * 1024 * 1024)
            await self._kafka.start()
        return self._kafka
