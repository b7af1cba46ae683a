"""The true end of a partition's log, on Apache Kafka and on the local Tansu broker alike.

ListOffsets "latest" (aiokafka's ``end_offsets()``) is the end on Apache Kafka, but Tansu can
answer the base offset of the last batch + 1: 150 records produced in two batches of 120 and
30 then look like 121. The high watermark in a fetch response is right on both. So each
partition is fetched from just below its listed end (a record is there on both brokers, and
a fetch returns at least the batch holding it), and its end is the higher of the listed end
and the high watermark of the response that brought that record. An empty log (listed end
= log start) has nothing to fetch; its listed end is its end.

One consumer without a group is kept between measurements (assigned again only when the
partitions change), so measuring every few seconds costs a ListOffsets and one small fetch
per partition, not a new connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import make_consumer, stop_consumer
from services.common.settings import Settings


class LogEnds:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: frozenset[TopicPartition] = frozenset()

    async def measure(self, partitions: Collection[TopicPartition], timeout: float = 5.0
                      ) -> dict[TopicPartition, int]:
        """The end offset of each partition (the offset its next record will get).
        Partitions whose fetch did not answer within ``timeout`` are left out."""
        if not partitions:
            return {}
        try:
            return await self._measure(sorted(partitions), timeout)
        except BaseException:
            await self.close()  # started afresh next time
            raise

    async def _measure(self, wanted: list[TopicPartition], timeout: float
                       ) -> dict[TopicPartition, int]:
        consumer = await self._assign(wanted)
        listed: dict[TopicPartition, int] = await consumer.end_offsets(wanted)
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(wanted)
        ends = {tp: listed[tp] for tp in wanted if listed[tp] <= starts[tp]}
        pending = {tp for tp in wanted if tp not in ends}
        for tp in pending:
            consumer.seek(tp, listed[tp] - 1)
        consumer.resume(*pending)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while pending and asyncio.get_running_loop().time() < deadline:
                fetched = await consumer.getmany(*pending, timeout_ms=100)
                for tp, records in fetched.items():
                    highwater = consumer.highwater(tp)
                    if records and tp in pending and highwater is not None:
                        ends[tp] = max(listed[tp], highwater)
                        pending.discard(tp)
        finally:  # nothing fetched between measurements
            consumer.pause(*wanted)
        return ends

    async def _assign(self, wanted: list[TopicPartition]) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = make_consumer(
                self._settings, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=10,
                max_partition_fetch_bytes=64 * 1024, fetch_max_bytes=1024 * 1024)
            await consumer.start()
            self._consumer, self._assigned = consumer, frozenset()
        if self._assigned != frozenset(wanted):
            self._consumer.assign(wanted)
            self._consumer.pause(*wanted)
            self._assigned = frozenset(wanted)
        return self._consumer

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)


async def log_ends(cluster: Settings | str, partitions: Collection[TopicPartition],
                   timeout: float = 5.0) -> dict[TopicPartition, int]:
    """One measurement with a consumer of its own. `cluster` may be a bootstrap address,
    connecting as the environment's settings say (JOINEDUP_KAFKA_SECURITY_PROTOCOL...)."""
    settings = Settings(kafka_bootstrap=cluster) if isinstance(cluster, str) else cluster
    ends = LogEnds(settings)
    try:
        return await ends.measure(partitions, timeout)
    finally:
        await ends.close()
