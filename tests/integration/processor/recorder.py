"""A tracked consumer whose handler records every record it applies, for the lag and
watchdog tests: no unique key on the record table, so a record applied twice shows twice.
The handler can be held (apply waits) or made to hang until cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.common import positions
from services.common.health import Health
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.common.tracked_consumer import Batch, ConsumerMetrics, TrackedConsumer

RECORDS = """
CREATE TABLE IF NOT EXISTS applied_record (
    topic text NOT NULL, partition int NOT NULL, kafka_offset bigint NOT NULL)
"""


class Recorder:
    def __init__(self, pool: asyncpg.Pool, name: str) -> None:
        self._pool = pool
        self._name = name
        self.open = asyncio.Event()   # cleared: every apply waits until it is set again
        self.open.set()
        self.hang_next = False        # True: the next apply waits until it is cancelled
        self.hung = asyncio.Event()

    async def prepare(self, batch: Batch) -> Batch:
        return batch

    async def apply(self, batch: Batch) -> None:
        if self.hang_next:
            self.hang_next = False
            self.hung.set()
            await asyncio.Event().wait()
        await self.open.wait()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO applied_record (topic, partition, kafka_offset) VALUES ($1, $2, $3)",
                [(m.topic, m.partition, m.offset) for m in batch.messages])
            await positions.advance(conn, self._name, batch.moves)


@dataclass
class Running:
    consumer: TrackedConsumer
    recorder: Recorder
    registry: CollectorRegistry
    metrics: ConsumerMetrics
    topic: str

    def lag(self, partition: int) -> float | None:
        return self.registry.get_sample_value("joinedup_consumer_lag", {
            "consumer": self.consumer.name, "topic": self.topic, "partition": str(partition)})

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(
            name, {"consumer": self.consumer.name, **labels}) or 0.0


@asynccontextmanager
async def recording(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Running]:
    """A tracked consumer of the person-events topic, running until the block ends."""
    await pool.execute(RECORDS)
    name = f"{settings.processor_group}-recorder"
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    recorder = Recorder(pool, name)
    consumer = TrackedConsumer(settings, pool, recorder, name=name, group=name,
                               topics=[settings.topics.person_events], health=Health(),
                               metrics=metrics)
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(stopping))
    try:
        yield Running(consumer, recorder, registry, metrics, settings.topics.person_events)
    finally:
        recorder.open.set()
        stopping.set()
        await asyncio.wait_for(task, 30)


async def produce(settings: Settings, partition: int, count: int) -> None:
    """`count` records onto one partition, sent together (the producer batches them: on
    Tansu, ListOffsets "latest" then answers the last batch's base offset + 1)."""
    producer = make_producer(settings)
    await producer.start()
    try:
        sends = [await producer.send(settings.topics.person_events, f"r{i}".encode(),
                                     key=b"k", partition=partition) for i in range(count)]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def applied(pool: asyncpg.Pool) -> list[tuple[int, int]]:
    rows = await pool.fetch("SELECT partition, kafka_offset FROM applied_record")
    return sorted((r["partition"], r["kafka_offset"]) for r in rows)


async def until(condition: object, timeout: float = 30.0) -> None:
    """Await `condition()` (sync or async) becoming true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        result = condition()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for a condition")


def partitions(topic: str, numbers: Sequence[int]) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in numbers]
