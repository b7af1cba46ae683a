"""Checking that an acknowledged write is on the log now, before answering 2xx for it.

An acknowledgement is not always a record on the log. Tansu (memory storage) acknowledges
writes to a topic it lost in a restart: the records go to a ghost that no new client sees,
which is gone for good once the topic is created again; a topic deleted and created again on
Apache Kafka takes its records with it; a receipt written yesterday can outlive the log it
points into. So:
- a fresh write is answered 202 only if the broker, asked after the acknowledgement, lists
  its topic (a ghost is not listed; writes never go to an unlisted topic, see TopicGuard);
- a receipt (200 "already accepted") is answered only if its record is read back at its
  partition and offset with the same bytes. Reading fresh writes back too would catch little
  more and costs dearly on Tansu, which serves a record acknowledged under load only up to a
  few hundred milliseconds later (that took single posts from p50 9 ms to 136 ms).
Checks are batched: every request waiting at a moment is checked by one round (one metadata
request, and fetches by partition for the receipts), sent with aiokafka's client and protocol
classes. A write that cannot be confirmed in time counts as not written (503: the client
retries with the same event id, and a copy that did land is recognised downstream by its id).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from services.common.kafka import make_client
from services.common.serde.agency_event import read_event
from services.common.settings import Settings

log = structlog.get_logger("joinedup.ingest")


@dataclass(frozen=True, slots=True)
class Written:
    """Where the broker said a record went, and the record's bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes
    read_back: bool = False  # read the record itself back (receipts), or check the topic
    #: (agency, event id) a record read back must hold. Each write of an event seals its
    #: personal fields afresh (services/common/serde/sealing.py), so a receipt's record is
    #: recognised by the event it holds, not by the bytes a retry would write.
    event: tuple[str, str] | None = None

    def found_in(self, value: bytes | None) -> bool:
        if self.event is None:
            return value == self.value
        event, _ = read_event(value)
        return event is not None and (event.source.agency, event.event_id) == self.event


class LogCheck:
    def __init__(self, settings: Settings, timeout: float = 2.0,
                 **client_options: object) -> None:
        self._settings = settings
        self._timeout = timeout
        self._options = client_options
        self._client: AIOKafkaClient | None = None
        self._pending: list[tuple[Written, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    async def start(self) -> None:
        self._client = make_client(self._settings, **self._options)
        await self._client.bootstrap()
        self._task = asyncio.create_task(self._run(), name="log-check")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, future in self._pending:
            if not future.done():
                future.set_result(False)
        if self._client is not None:
            await self._client.close()

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
            try:  # the round gives up at its deadline; wait_for is only a backstop
                found = await asyncio.wait_for(self._check([w for w, _ in batch]),
                                               self._timeout + 5.0)
            except (KafkaError, OSError, TimeoutError, AssertionError) as exc:
                log.warning("acknowledged writes could not be read back",
                            error=type(exc).__name__, writes=len(batch))
                found = set()
            self.rounds += 1
            for written, future in batch:
                if not future.done():
                    future.set_result(written in found)

    async def _check(self, writes: list[Written]) -> set[Written]:
        """Whichever writes are confirmed: their topic listed by the broker now, and, for
        those to read back, their record found at their offset with the same bytes."""
        client = self._client
        assert client is not None
        cluster = await client.fetch_all_metadata()
        listed = [w for w in writes if w.topic in cluster.topics()]
        found = {w for w in listed if not w.read_back}
        wanted: dict[TopicPartition, dict[int, Written]] = {}
        for w in listed:
            if w.read_back:
                wanted.setdefault(TopicPartition(w.topic, w.partition), {})[w.offset] = w
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in wanted:
            leader = cluster.leader_for_partition(tp)
            if leader is not None and leader >= 0:
                by_leader.setdefault(leader, []).append(tp)
        deadline = asyncio.get_running_loop().time() + self._timeout
        while by_leader and asyncio.get_running_loop().time() < deadline:
            replies = await asyncio.gather(*(
                self._fetch(node, {tp: min(wanted[tp]) for tp in tps})
                for node, tps in by_leader.items()))
            for records in replies:
                for tp, fetched in records.items():
                    for offset, value in fetched:
                        written = wanted[tp].pop(offset, None)
                        if written is not None and written.found_in(value):
                            found.add(written)
                    if fetched:  # what is below the last offset returned is not there
                        last = fetched[-1][0]
                        wanted[tp] = {o: w for o, w in wanted[tp].items() if o > last}
            # Still wanted: beyond what one fetch returned, not served yet, or not on the
            # log. Fetched again until the round's deadline says it is not there.
            by_leader = {node: [tp for tp in tps if wanted[tp]]
                         for node, tps in by_leader.items() if any(wanted[tp] for tp in tps)}
            if by_leader:
                await asyncio.sleep(0.005)
        return found

    async def _fetch(self, node: int, starts: dict[TopicPartition, int]
                     ) -> dict[TopicPartition, list[tuple[int, bytes | None]]]:
        """(offset, value) of the records from each start offset, as one fetch returns them.
        A partition the broker answers with an error (unknown topic, offset out of range)
        holds none of our writes."""
        assert self._client is not None
        topics: dict[str, list[tuple[int, int, int]]] = {}
        for tp, offset in starts.items():
            topics.setdefault(tp.topic, []).append((tp.partition, offset, _PARTITION_BYTES))
        # Tansu answers a fetch with max_wait 0 with nothing at all; 1 ms is enough.
        response = await self._client.send(node, FetchRequest(
            1, 1, _PARTITION_BYTES * len(starts), 0, list(topics.items())))
        found: dict[TopicPartition, list[tuple[int, bytes | None]]] = {}
        for topic, partitions in response.topics:
            for partition, error_code, _highwater, *data in partitions:
                if error_code != 0:
                    continue
                tp = TopicPartition(topic, partition)
                batches = MemoryRecords(data[-1])
                records = found.setdefault(tp, [])
                while batches.has_next():
                    batch = batches.next_batch()
                    if batch is None:
                        break
                    records.extend((r.offset, r.value) for r in batch)
        return found


#: Enough for the record batch that holds a write (a produce request's worth).
_PARTITION_BYTES = 1024 * 1024
