"""The agency-event intake: a consumer-group member that feeds batches to the pipeline.

Why not a Faust stream here: on this machine a Faust agent iterated about 4,300 events/s
(stream.take included) while aiokafka's getmany() read about 200,000/s, and the tracking-row
pattern needs the consumer to start from the position PostgreSQL holds, which Faust's offset
management does not offer. So the Faust worker runs this loop as one of its tasks; Faust
agents handle the low-volume alert stream. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.common.settings import Settings
from services.processor.adapters import store
from services.processor.pipeline import BatchProcessor, Decoded, Message

log = structlog.get_logger("joinedup.intake")


class _StartFromTrackedPosition(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, seek every partition to the position committed with the effects."""

    def __init__(self, intake: Intake) -> None:
        self._intake = intake

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._intake.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._intake.seek_to_tracked(assigned)


class Intake:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, processor: BatchProcessor,
                 on_revoke: Callable[[], None] | None = None) -> None:
        self._settings = settings
        self._pool = pool
        self._processor = processor
        self._on_revoke = on_revoke  # drops per-partition caches (rule state)
        self._topic = settings.topics.agency_events
        self._consumer: AIOKafkaConsumer | None = None
        self._caught_up: set[int] = set()
        self._applied: dict[int, int] = {}  # partition -> next offset applied and committed
        self.processed = 0

    def caught_up_partitions(self) -> list[int]:
        """Assigned partitions with nothing left to apply at the last poll (the fetch
        response's high watermark is used: Tansu's ListOffsets "latest" can lag it)."""
        return sorted(self._caught_up)

    async def _note_lag(self, consumer: AIOKafkaConsumer) -> None:
        """A partition is caught up when everything below the fetch response's high
        watermark has been applied (Tansu's ListOffsets "latest" can lag the watermark, so
        end_offsets() is not used)."""
        self._caught_up = {
            tp.partition for tp in consumer.assignment()
            if (highwater := consumer.highwater(tp)) is not None
            and self._applied.get(tp.partition, -1) >= highwater}

    def forget(self, partitions: list[TopicPartition]) -> None:
        """No timers for partitions this worker no longer owns."""
        self._caught_up -= {tp.partition for tp in partitions}
        for tp in partitions:
            self._applied.pop(tp.partition, None)
        if partitions and self._on_revoke is not None:
            self._on_revoke()

    async def seek_to_tracked(self, partitions: list[TopicPartition]) -> None:
        assert self._consumer is not None
        async with self._pool.acquire() as conn:
            tracked = await store.load_positions(conn, self._settings.processor_group, self._topic)
        for tp in partitions:
            if tp.partition in tracked:
                self._consumer.seek(tp, tracked[tp.partition])
                self._applied[tp.partition] = tracked[tp.partition]
            else:
                await self._consumer.seek_to_beginning(tp)
                self._applied.pop(tp.partition, None)

    async def run(self, stopping: asyncio.Event) -> None:
        _, bootstrap = self._settings.require_servers()
        self._consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=self._settings.processor_group,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
            max_poll_records=self._settings.batch_max_events,
            fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
        consumer.subscribe([self._topic], listener=_StartFromTrackedPosition(self))
        await consumer.start()
        self._backoff = 0.5
        applying: asyncio.Task[None] | None = None
        try:
            while not stopping.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=self._settings.batch_wait_ms,
                    max_records=self._settings.batch_max_events)
                messages = [
                    Message(tp.topic, tp.partition, m.offset, m.key, m.value)
                    for tp, records in fetched.items() for m in records]
                if not messages:
                    if applying is not None:
                        await _succeeded(applying)
                        applying = None
                    await self._note_lag(consumer)
                    continue
                # Decode this batch while the previous one's transaction is in PostgreSQL.
                decoded = await self._processor.decode(messages)
                if applying is not None:
                    ok = await _succeeded(applying)
                    applying = None
                    if not ok:  # it failed and re-seeked: this batch is fetched again
                        continue
                applying = asyncio.create_task(self._apply(consumer, decoded, fetched))
            if applying is not None:
                await applying
        finally:
            if applying is not None and not applying.done():
                applying.cancel()
            await consumer.stop()

    async def _apply(self, consumer: AIOKafkaConsumer, decoded: Decoded,
                     fetched: dict[TopicPartition, list[Any]]) -> None:
        try:
            result = await self._processor.apply(decoded)
        except Exception as exc:  # servers down or a bug: retry from the tracked position
            log.error("batch not applied; will retry", error=type(exc).__name__,
                      size=len(decoded.messages), retry_in=self._backoff)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 30.0)
            self._caught_up = set()
            await self.seek_to_tracked(list(consumer.assignment()))
            raise
        self._backoff = 0.5
        self.processed += len(decoded.messages)
        for tp, records in fetched.items():
            if records:
                self._applied[tp.partition] = records[-1].offset + 1
        await self._note_lag(consumer)
        log.debug("batch applied", applied=result.applied, duplicates=result.duplicates,
                  parked=result.parked)
        # Informational only (lag monitoring): PostgreSQL holds the real position, so a
        # commit lost in a rebalance costs nothing.
        try:
            await consumer.commit({tp: records[-1].offset + 1
                                   for tp, records in fetched.items() if records})
        except KafkaError as exc:
            log.info("offset commit skipped", error=type(exc).__name__)


async def _succeeded(task: asyncio.Task[None]) -> bool:
    try:
        await task
    except Exception:  # already logged, and the consumer re-seeked to the tracked position
        return False
    return True
