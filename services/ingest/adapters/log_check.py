"""Reading acknowledged writes back: the gateway answers 2xx only for events on the log now.

An acknowledgement is not always a record on the log. Tansu (memory storage) acknowledges
writes to a topic that does not exist after a restart and keeps none of them; a topic deleted
and created again on Apache Kafka takes its records with it; a receipt written yesterday can
outlive the log it points into. So before answering 202 (or 200 "already accepted"), the
gateway reads each event back at the partition and offset it was given and compares the bytes.

Checks are batched: every request waiting at a moment is checked by one round of fetches (one
consumer, one seek per partition), so a busy gateway pays about one fetch round trip per round,
not per event. A write that cannot be read back in time counts as not written (503: the client
retries with the same event id, and a copy that did land is recognised downstream by its id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError

log = structlog.get_logger("joinedup.ingest")


@dataclass(frozen=True, slots=True)
class Written:
    """Where the broker said a record went, and the record's bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes


class LogCheck:
    def __init__(self, bootstrap: str, timeout: float = 2.0, **consumer_options: object) -> None:
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._options = consumer_options
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: list[tuple[Written, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="none", fetch_max_wait_ms=20, **self._options)  # type: ignore[arg-type]
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="log-check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._pending:
            if not future.done():
                future.set_result(False)
        if self._consumer is not None:
            await self._consumer.stop()


    async def confirm(self, writes: Sequence[Written]) -> list[bool]:
        """For each write: is that record at that position of the log now?"""
        if not writes:
            return []
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in writes]
        self._pending.extend(zip(writes, futures, strict=True))
        self._wake.set()
        return [await future for future in futures]

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                found = await self._check([w for w, _ in batch])
            except (KafkaError, OSError, TimeoutError, AssertionError) as exc:
                log.warning("acknowledged writes could not be read back",
                            error=type(exc).__name__, writes=len(batch))
                found = set()
            self.rounds += 1
            for written, future in batch:
                if not future.done():
                    future.set_result(written in found)

    async def _check(self, writes: list[Written]) -> set[Written]:
        consumer = self._consumer
        assert consumer is not None
        # The broker's own list of topics, asked now: Tansu serves produce and fetch requests
        # for a topic it lost in a restart (a ghost no new client can see, gone for good once
        # the topic is created again), so a record read back proves nothing on its own.
        listed = set(await consumer.topics())
        wanted: dict[TopicPartition, dict[int, Written]] = {}
        for w in writes:
            if w.topic in listed:
                wanted.setdefault(TopicPartition(w.topic, w.partition), {})[w.offset] = w
        if not wanted:
            return set()
        if set(wanted) != consumer.assignment():
            consumer.assign(list(wanted))
        for tp, offsets in wanted.items():
            consumer.seek(tp, min(offsets))
        found: set[Written] = set()
        deadline = asyncio.get_running_loop().time() + self._timeout
        pending = set(wanted)
        read_to = {tp: min(offsets) for tp, offsets in wanted.items()}  # next offset to see
        while pending and asyncio.get_running_loop().time() < deadline:
            try:
                fetched = await consumer.getmany(*pending, timeout_ms=100)
            except OffsetOutOfRangeError as exc:  # Apache Kafka: not on this log
                gone = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                pending -= set(gone)
                continue
            for tp, records in fetched.items():
                offsets = wanted[tp]
                for record in records:
                    written = offsets.get(record.offset)
                    if written is not None and record.value == written.value:
                        found.add(written)
                if records:
                    read_to[tp] = records[-1].offset + 1
                if read_to[tp] > max(offsets):
                    pending.discard(tp)
            for tp in list(pending):
                # Tansu answers a fetch beyond the end with no records and the high watermark:
                # nothing left below it to read means the rest is not on this log. A topic the
                # broker does not know holds nothing we wrote.
                highwater = consumer.highwater(tp)
                if ((highwater is not None and read_to[tp] >= highwater)
                        or not consumer.partitions_for_topic(tp.topic)):
                    pending.discard(tp)
        return found
