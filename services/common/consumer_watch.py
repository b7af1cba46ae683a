"""The watchdog beside each tracked consumer: lag per partition, stalls found and recovered.

Every ``watchdog_interval_seconds`` it reads the consumer's stored positions (PostgreSQL,
the tracking rows: what is really applied) and the true end of each assigned partition's log
(``log_ends``: right on Tansu as on Apache Kafka), exports the difference as
``joinedup_consumer_lag``, and folds the readings into ``services/common/watchdog.py``. A
stalled partition is named in a warning and counted in ``joinedup_consumer_stalled_partitions``;
it is first positioned again from its stored position (seek and resume), then, if it stays
stalled, the whole consumer is restarted (its partitions positioned again from PostgreSQL).
Either way the stored position is the only truth, so nothing is skipped or applied twice.
A log that ends before a stored position is positioned again at once, which checks the log's
identity (``watchdog.behind_the_end``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import asyncpg
import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from services.common import positions, watchdog
from services.common.db import DATABASE_UNAVAILABLE
from services.common.kafka import BROKER_UNAVAILABLE
from services.common.log_ends import LogEnds
from services.common.settings import Settings
from services.common.watchdog import Progress, Reading, Stall

if TYPE_CHECKING:
    from services.common.tracked_consumer import ConsumerMetrics, TrackedConsumer

log = structlog.get_logger("joinedup.watchdog")
_UNMEASURED = (*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE, KafkaError, OSError, TimeoutError)


class ConsumerWatch:
    def __init__(self, consumer: TrackedConsumer, settings: Settings, pool: asyncpg.Pool,
                 metrics: ConsumerMetrics) -> None:
        self._consumer = consumer
        self._settings = settings
        self._pool = pool
        self._metrics = metrics
        self._state: dict[TopicPartition, Progress] = {}
        self._exported: set[TopicPartition] = set()
        self._failing = False
        self._ends = LogEnds(settings)

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(),
                                           self._settings.watchdog_interval_seconds)
                if stopping.is_set():
                    return
                try:
                    await self.check()
                except _UNMEASURED as exc:  # the consumer itself reports the servers down
                    # Stall clocks start again once measured again: an outage is no stall.
                    self._state = {}
                    if not self._failing:
                        log.warning("lag not measured; the watchdog waits for the servers",
                                    consumer=self._consumer.name, error=type(exc).__name__)
                    self._failing = True
                except Exception as exc:  # a bug here must not end the watch (nor the worker)
                    self._state = {}
                    await self.close()
                    log.error("watchdog check failed; trying again next interval",
                              consumer=self._consumer.name, error=type(exc).__name__)
        finally:
            await self.close()

    async def close(self) -> None:
        with contextlib.suppress(*_UNMEASURED):
            await self._ends.close()

    async def check(self) -> list[Stall[TopicPartition]]:
        """Measure once, export, and start the recoveries due; returns the stalls found."""
        name = self._consumer.name
        readings = await self._readings(self._consumer.watched_partitions())
        self._failing = False
        self._export(readings)
        for tp in watchdog.behind_the_end(readings):
            log.error("the log ends before the stored position (records applied are gone: a "
                      "replaced log?); positioning the partition again, which checks the log",
                      consumer=name, topic=tp.topic, partition=tp.partition,
                      position=readings[tp].position, log_end=readings[tp].end)
            self._consumer.reposition(tp)
            self._metrics.recoveries.labels(name, "log-check").inc()
        now = asyncio.get_running_loop().time()
        if self._consumer.retrying:  # a failure reported and retried is no silent stall
            readings = {}  # (so its partitions are forgotten: their clocks start again)
        self._state, stalls = watchdog.observe(self._state, now, readings,
                                               self._settings.watchdog_stall_seconds)
        self._metrics.stalled.labels(name).set(len(stalls))
        for stall in stalls:
            tp = stall.partition
            log.warning("partition stalled: records wait and its position has not moved",
                        consumer=name, topic=tp.topic, partition=tp.partition,
                        position=stall.position, lag=stall.lag, seconds=round(stall.seconds),
                        action=stall.action or "waiting for the last recovery")
            if stall.action == "reposition":
                self._consumer.reposition(tp)
                self._metrics.recoveries.labels(name, "reposition").inc()
        if any(stall.action == "restart" for stall in stalls):
            self._consumer.restart()
            self._metrics.recoveries.labels(name, "restart").inc()
        return stalls

    async def _readings(self, partitions: set[TopicPartition]) -> dict[TopicPartition, Reading]:
        if not partitions:
            return {}
        # Positions first: the ends read after them are at least as far, so a lag is never
        # made smaller by a batch committed in between.
        stored = await positions.load(self._pool, self._consumer.name,
                                      {tp.topic for tp in partitions})
        ends = await self._ends.measure(partitions)
        return {tp: Reading(row.next_offset, ends[tp]) for tp in partitions
                if tp in ends and (row := stored.get((tp.topic, tp.partition))) is not None}

    def _export(self, readings: dict[TopicPartition, Reading]) -> None:
        name = self._consumer.name
        for tp in self._exported - set(readings):  # revoked, or not measured this time
            with contextlib.suppress(KeyError):
                self._metrics.lag.remove(name, tp.topic, str(tp.partition))
        for tp, reading in readings.items():
            self._metrics.lag.labels(name, tp.topic, str(tp.partition)).set(reading.lag)
        self._exported = set(readings)
