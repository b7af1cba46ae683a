"""A consumer-group member that applies a log exactly where PostgreSQL says it stands.

Every stage that turns a log into effects (the processor's intake, admission) runs one. The
rules it keeps, whatever the servers do:
- a partition is paused from the moment it is assigned until it is positioned: its tracking
  row read, its log's identity checked (`log_probe`), and the consumer sought there. Nothing
  is fetched from a partition that is not positioned, so a failed seek cannot be followed by
  records from wherever the consumer happened to be;
- batches are contiguous: each names, per partition, the offset it starts from, and the
  handler's transaction moves the stored position from exactly there (`positions.advance`),
  so no gap is ever recorded;
- any failure (database or broker down, a bug, a position that moved) pauses every partition,
  waits with backoff, and positions them again from PostgreSQL. Nothing is skipped and the
  worker does not exit; the health report says why it is not ready;
- a replaced log (a position beyond the new log's end, or onto other records) is detected
  before anything is applied, logged as an error, counted, recorded in `log_reset`, and either
  replayed from the start of the new log (the archive de-duplicates what comes again) or
  refused (the partition stays paused), never skipped silently.
The handler does the work in two halves so the next batch's decoding overlaps the previous
batch's transaction: `prepare` (CPU: decode and check) and `apply` (the transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import correlation, log_probe, positions
from services.common.backoff import Backoff
from services.common.consumer_watch import ConsumerWatch
from services.common.db import DATABASE_UNAVAILABLE
from services.common.health import Health
from services.common.kafka import BROKER_UNAVAILABLE, make_consumer, stop_consumer
from services.common.positions import Move, PositionConflict, Tracked
from services.common.records import Message
from services.common.settings import Settings

log = structlog.get_logger("joinedup.consumer")

ResetPolicy = Literal["replay", "refuse"]
_RETRY: tuple[type[BaseException], ...] = (*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE,
                                           PositionConflict)


@dataclass(frozen=True, slots=True)
class Batch:
    messages: Sequence[Message]
    moves: Sequence[Move]   # per partition: [start, end) and the last record's digest


class BatchHandler(Protocol):
    async def prepare(self, batch: Batch) -> Any:
        """Decode and check (no database writes). May raise; the batch is then retried."""

    async def apply(self, prepared: Any) -> object:
        """Write the effects and `positions.advance(conn, name, batch.moves)` in ONE
        transaction. Raise on any failure (the batch is retried from the stored position)."""


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.failures = Counter("joinedup_consumer_batch_failures", "batches not applied "
                                "(retried from the stored position)", ["consumer", "error"],
                                registry=registry)
        self.resets = Counter("joinedup_consumer_log_resets", "replaced logs detected",
                              ["consumer", "topic", "action"], registry=registry)
        self.waiting = Gauge("joinedup_consumer_partitions_waiting", "assigned partitions "
                             "paused until positioned", ["consumer"], registry=registry)
        self.records = Counter("joinedup_consumer_records", "records applied",
                               ["consumer"], registry=registry)
        self.batch_seconds = Histogram(
            "joinedup_consumer_batch_seconds", "time to prepare (decode, check) and to apply "
            "(one transaction) a batch", ["consumer", "stage"], registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.end_to_end = Histogram(
            "joinedup_consumer_end_to_end_seconds", "from a record's Kafka timestamp to the "
            "commit of the batch that applied it", ["consumer"], registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600))
        self.lag = Gauge("joinedup_consumer_lag", "records in the log not yet applied: true "
                         "end of log - the position stored in PostgreSQL",
                         ["consumer", "topic", "partition"], registry=registry)
        self.stalled = Gauge("joinedup_consumer_stalled_partitions", "assigned partitions "
                             "with a lag whose position has not moved for the stall time",
                             ["consumer"], registry=registry)
        self.recoveries = Counter("joinedup_consumer_stall_recoveries", "stalled partitions "
                                  "repositioned, consumers restarted, logs ending before a "
                                  "stored position checked (action log-check)",
                                  ["consumer", "action"], registry=registry)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: TrackedConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._owner.assigned(assigned)


class TrackedConsumer:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, handler: BatchHandler, *,
                 name: str, group: str, topics: Sequence[str] = (), pattern: str | None = None,
                 on_revoke: Callable[[], None] | None = None, health: Health | None = None,
                 metrics: ConsumerMetrics | None = None, reset_policy: ResetPolicy = "replay",
                 max_records: int | None = None) -> None:
        assert bool(topics) != (pattern is not None), "topics or a pattern, not both"
        self._settings = settings
        self._pool = pool
        self._handler = handler
        self.name = name
        self._group = group
        self._topics = list(topics)
        self._pattern = pattern
        self._on_revoke = on_revoke
        self._health = health or Health()
        self._metrics = metrics or ConsumerMetrics()
        self._reset_policy = reset_policy
        self._max_records = max_records or settings.batch_max_events
        self._backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
        self._consumer: AIOKafkaConsumer | None = None
        self._applying: asyncio.Task[bool] | None = None
        self._retry_at = 0.0
        # Per assigned partition:
        self._waiting: set[TopicPartition] = set()   # paused until positioned
        self._cursor: dict[TopicPartition, int] = {}  # where the next batch must start
        self._applied: dict[TopicPartition, int] = {}  # committed next offset
        self._fresh: set[TopicPartition] = set()      # sought; the first fetch may skip a gap
        self._refused: set[TopicPartition] = set()    # replaced log, refuse policy
        self._caught_up: set[TopicPartition] = set()
        self._restarting = asyncio.Event()
        self.applied_records = 0

    # --- what other components ask -----------------------------------------------------------

    def caught_up_partitions(self) -> list[int]:
        """Positioned partitions with nothing left below the last fetch's high watermark."""
        return sorted({tp.partition for tp in self._caught_up})

    def caught_up_everywhere(self) -> bool:
        """Nothing paused, and every assigned partition caught up (nothing assigned: True)."""
        consumer = self._consumer
        if consumer is None or self._waiting:
            return consumer is None and not self._waiting
        return consumer.assignment() <= self._caught_up

    @property
    def waiting(self) -> set[TopicPartition]:
        return set(self._waiting)

    # --- what the watchdog does -------------------------------------------------------------

    def watched_partitions(self) -> set[TopicPartition]:
        """The assigned partitions, less those refused on purpose (a replaced log)."""
        consumer = self._consumer
        return set() if consumer is None else consumer.assignment() - self._refused

    def reposition(self, tp: TopicPartition) -> None:
        """Pause `tp`; the next step seeks it to its stored position and resumes it."""
        self._reposition(tp)
        self._retry_at = 0.0
        self._metrics.waiting.labels(self.name).set(len(self._waiting))

    def restart(self) -> None:
        """Stop the consumer and start it again (its partitions positioned from PostgreSQL)."""
        self._restarting.set()

    @property
    def retrying(self) -> bool:
        """Retrying after a failure it reported (servers down, a position that moved): not a
        silent stall, so the watchdog leaves it to the backoff."""
        return not self._health.ready_component(self.name)

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set. A consumer that fails (a broker unreachable at
        start, an unexpected error) is stopped and started again after a backoff; one the
        watchdog finds stalled (services/common/consumer_watch.py) is restarted at once."""
        watching = asyncio.create_task(
            ConsumerWatch(self, self._settings, self._pool, self._metrics).run(stopping))
        try:
            await self._keep_consuming(stopping)
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching

    async def _keep_consuming(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self._consume_until_restarted(stopping)
            except Exception as exc:
                delay = self._backoff.next()
                log.error("consumer failed; starting it again", consumer=self.name,
                          error=type(exc).__name__, retry_in=round(delay, 1))
                self._health.down(self.name, f"consumer failed ({type(exc).__name__})")
                self._forget_all()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)

    async def _consume_until_restarted(self, stopping: asyncio.Event) -> None:
        """`_consume`, cancelled if the watchdog asks for a restart: cancelling it stops the
        consumer and drops the batch in flight (its transaction commits whole or not at
        all, and the next consumer starts from the stored positions)."""
        self._restarting.clear()
        consuming = asyncio.create_task(self._consume(stopping))
        restart = asyncio.create_task(self._restarting.wait())
        try:
            await asyncio.wait({consuming, restart}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            restart.cancel()
            if not consuming.done():
                consuming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consuming
        if consuming.cancelled():
            log.warning("consumer restarted by the watchdog", consumer=self.name)
            return
        consuming.result()

    async def _consume(self, stopping: asyncio.Event) -> None:
        consumer = make_consumer(
            self._settings, group_id=self._group, enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Co-partitioning: partition p of every subscribed topic goes to the same member.
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
            metadata_max_age_ms=self._settings.kafka_metadata_max_age_ms,
            max_poll_records=self._max_records,
            fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
            fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
        if self._pattern is not None:
            consumer.subscribe(pattern=self._pattern, listener=_Listener(self))
        else:
            consumer.subscribe(self._topics, listener=_Listener(self))
        self._consumer = consumer
        await consumer.start()
        try:
            while not stopping.is_set():
                with correlation.bound():  # one id per fetch and the batch it yields
                    await self._step(consumer)
            await self._settle()
        finally:
            if self._applying is not None and not self._applying.done():
                self._applying.cancel()
                with contextlib.suppress(BaseException):
                    await self._applying
            self._applying = None
            self._consumer = None
            self._forget_all()
            await stop_consumer(consumer)

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        if self._waiting:
            await self._settle()  # positions are read only with nothing in flight
            await self._position(consumer)
        fetched = await consumer.getmany(timeout_ms=self._settings.batch_wait_ms,
                                         max_records=self._max_records)
        batch = self._take(fetched)
        if not batch.messages:
            if self._applying is not None and self._applying.done():
                await self._settle()
            self._note_lag(consumer)
            return
        began = time.perf_counter()
        try:
            prepared = await self._handler.prepare(batch)
        except Exception as exc:
            self._failed(exc, "prepare")
            return
        self._metrics.batch_seconds.labels(self.name, "prepare").observe(
            time.perf_counter() - began)
        if not await self._settle():
            return  # the previous batch failed: every partition is positioned again
        self._applying = asyncio.create_task(self._apply(prepared, batch))

    async def _settle(self) -> bool:
        """Wait for the batch in flight; False if it failed."""
        applying, self._applying = self._applying, None
        return True if applying is None else await applying

    async def _apply(self, prepared: Any, batch: Batch) -> bool:
        began = time.perf_counter()
        try:
            await self._handler.apply(prepared)
        except Exception as exc:
            self._failed(exc, "apply")
            return False
        self._metrics.batch_seconds.labels(self.name, "apply").observe(
            time.perf_counter() - began)
        committed, end_to_end = time.time(), self._metrics.end_to_end.labels(self.name)
        for message in batch.messages:
            if message.timestamp >= 0:
                end_to_end.observe(max(0.0, committed - message.timestamp / 1000))
        self._backoff.reset()
        self._health.up(self.name)
        for move in batch.moves:
            self._applied[TopicPartition(move.topic, move.partition)] = move.end
        self.applied_records += len(batch.messages)
        self._metrics.records.labels(self.name).inc(len(batch.messages))
        log.debug("batch applied", consumer=self.name, records=len(batch.messages),
                  partitions=len(batch.moves))
        consumer = self._consumer
        if consumer is not None:
            self._note_lag(consumer)
            # Informational only (lag monitoring): PostgreSQL holds the real position.
            with contextlib.suppress(KafkaError, AssertionError):
                await consumer.commit({TopicPartition(m.topic, m.partition): m.end
                                       for m in batch.moves
                                       if TopicPartition(m.topic, m.partition)
                                       in consumer.assignment()})
        return True

    def _failed(self, exc: BaseException, stage: str) -> None:
        """Pause everything and position it again from PostgreSQL after a backoff."""
        delay = self._backoff.next()
        # an expected wait says what it waits for (``cause``: NotYetResolved's, the events
        # an identity decision still being committed has keyed)
        expected = getattr(exc, "cause", None)
        kind = (expected if isinstance(expected, str)
                else "the database is unavailable" if isinstance(exc, DATABASE_UNAVAILABLE)
                else "the broker is unavailable" if isinstance(exc, BROKER_UNAVAILABLE)
                else "the stored position moved" if isinstance(exc, PositionConflict)
                else "unexpected error")
        log_at = (log.warning if isinstance(exc, PositionConflict) or expected is not None
                  else log.error)
        log_at("batch not applied; retrying from the stored position", consumer=self.name,
               stage=stage, error=type(exc).__name__, cause=kind, retry_in=round(delay, 1))
        self._metrics.failures.labels(self.name, type(exc).__name__).inc()
        self._health.down(self.name, f"retrying: {kind} ({type(exc).__name__})")
        self._retry_at = asyncio.get_running_loop().time() + delay
        consumer = self._consumer
        assigned = consumer.assignment() if consumer is not None else set()
        if consumer is not None and assigned:
            consumer.pause(*assigned)
        self._waiting |= set(assigned)
        self._cursor.clear()
        self._fresh.clear()
        self._caught_up = set()
        self._metrics.waiting.labels(self.name).set(len(self._waiting))

    def _take(self, fetched: dict[TopicPartition, list[Any]]) -> Batch:
        """The positioned, contiguous part of what was fetched, with its moves."""
        messages: list[Message] = []
        moves: list[Move] = []
        for tp, records in fetched.items():
            start = self._cursor.get(tp)
            if not records or start is None or tp in self._waiting:
                continue  # not positioned: fetched again once it is
            first = records[0].offset
            if first < start or (first > start and tp not in self._fresh):
                log.warning("records not contiguous with the position; positioning again",
                            consumer=self.name, topic=tp.topic, partition=tp.partition,
                            expected=start, got=first)
                self._reposition(tp)
                continue
            self._fresh.discard(tp)
            taken = [Message.of(r) for r in records]
            messages.extend(taken)
            moves.append(Move(tp.topic, tp.partition, start, taken[-1].offset + 1,
                              taken[-1].digest))
            self._cursor[tp] = taken[-1].offset + 1
        return Batch(messages, moves)

    def _reposition(self, tp: TopicPartition) -> None:
        if self._consumer is not None:
            self._consumer.pause(tp)
        self._waiting.add(tp)
        self._cursor.pop(tp, None)
        self._caught_up.discard(tp)

    def _note_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Caught up: everything below the fetch response's high watermark is applied
        (Tansu's ListOffsets "latest" can lag the watermark, so end_offsets() is not used)."""
        self._caught_up = {
            tp for tp in consumer.assignment()
            if tp not in self._waiting and (highwater := consumer.highwater(tp)) is not None
            and self._applied.get(tp, -1) >= highwater}

    # --- assignment and positioning ---------------------------------------------------------

    def assigned(self, assigned: list[TopicPartition]) -> None:
        """Pause first, before anything that can fail: aiokafka logs and swallows listener
        errors and would then fetch from Kafka's committed offset."""
        if self._consumer is not None and assigned:
            self._consumer.pause(*assigned)
        self._waiting |= set(assigned)
        self._retry_at = 0.0
        self._metrics.waiting.labels(self.name).set(len(self._waiting))

    async def revoked(self, revoked: list[TopicPartition]) -> None:
        # Let the batch in flight finish, so the next owner reads a settled position (the
        # compare-and-set keeps positions right even if it does not).
        applying = self._applying
        if applying is not None and not applying.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(applying), 10.0)
        for tp in revoked:
            self._waiting.discard(tp)
            self._cursor.pop(tp, None)
            self._applied.pop(tp, None)
            self._fresh.discard(tp)
            self._refused.discard(tp)
            self._caught_up.discard(tp)
        if revoked and self._on_revoke is not None:
            self._on_revoke()

    def _forget_all(self) -> None:
        for state in (self._waiting, self._fresh, self._refused):
            state.clear()
        self._cursor.clear()
        self._applied.clear()
        self._caught_up = set()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        if asyncio.get_running_loop().time() < self._retry_at:
            return
        assignment = consumer.assignment()
        self._waiting &= assignment
        pending = sorted(self._waiting)
        if not pending:
            return
        try:
            done = await self._position_partitions(consumer, pending)
        except _RETRY as exc:
            done = False
            delay = self._backoff.next()
            log.warning("partitions not positioned yet; retrying", consumer=self.name,
                        partitions=len(pending), error=type(exc).__name__,
                        retry_in=round(delay, 1))
            self._health.down(self.name, f"cannot position partitions ({type(exc).__name__})")
            self._retry_at = asyncio.get_running_loop().time() + delay
        if done:
            self._backoff.reset()
            self._health.up(self.name)
        elif self._waiting and asyncio.get_running_loop().time() >= self._retry_at:
            self._retry_at = asyncio.get_running_loop().time() + self._backoff.next()
        self._metrics.waiting.labels(self.name).set(len(self._waiting))

    async def _position_partitions(self, consumer: AIOKafkaConsumer,
                                   pending: list[TopicPartition]) -> bool:
        """Position what can be; True when nothing is left waiting."""
        topics = {tp.topic for tp in pending}
        stored = await positions.load(self._pool, self.name, topics)
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(pending)
        first_seen = {(tp.topic, tp.partition): starts[tp] for tp in pending
                      if (tp.topic, tp.partition) not in stored}
        if first_seen:
            await positions.start(self._pool, self.name, first_seen)
            stored = await positions.load(self._pool, self.name, topics)
        rows = {tp: stored[(tp.topic, tp.partition)] for tp in pending}
        verdicts = await log_probe.verify(self._settings, rows, starts)
        for tp in pending:
            row, verdict = rows[tp], verdicts[tp]
            if verdict.kind == "unverified":
                log.warning("log identity not verified yet; the partition stays paused",
                            consumer=self.name, topic=tp.topic, partition=tp.partition,
                            reason=verdict.reason)
                continue
            if verdict.kind == "replaced":
                restarted = await self._replaced(row, tp, starts[tp], verdict.reason)
                if restarted is None:
                    continue
                row = restarted
            elif verdict.anchor is not None:
                await positions.record_anchor(self._pool, self.name, row, verdict.anchor)
            consumer.seek(tp, row.next_offset)
            self._cursor[tp] = self._applied[tp] = row.next_offset
            self._fresh.add(tp)
            self._waiting.discard(tp)
            consumer.resume(tp)
        return not self._waiting

    async def _replaced(self, row: Tracked, tp: TopicPartition, log_start: int, reason: str
                        ) -> Tracked | None:
        """A replaced log: replay it from its start, or refuse (the partition stays paused)."""
        if self._reset_policy == "refuse":
            if tp not in self._refused:
                await positions.refuse(self._pool, self.name, row, reason)
                self._refused.add(tp)
                self._metrics.resets.labels(self.name, tp.topic, "refused").inc()
            log.error("the log was replaced; refusing to apply it (JOINEDUP_ON_LOG_RESET="
                      "refuse): the partition stays paused", consumer=self.name,
                      topic=tp.topic, partition=tp.partition, stored_offset=row.next_offset,
                      reason=reason)
            self._health.down(self.name, f"refused a replaced log: {tp.topic}[{tp.partition}]")
            return None
        async with self._pool.acquire() as conn:
            await positions.restart(conn, self.name, row, log_start, reason)
        self._metrics.resets.labels(self.name, tp.topic, "replayed").inc()
        log.error("the log was replaced; replaying the partition from the start of its new "
                  "log (events applied before are recognised by their ids)", consumer=self.name,
                  topic=tp.topic, partition=tp.partition, stored_offset=row.next_offset,
                  log_start=log_start, reason=reason)
        return Tracked(row.topic, row.partition, log_start, None)
