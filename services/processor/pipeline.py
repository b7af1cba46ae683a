"""One batch of agency-event messages, from bytes to committed read models.

1. decode and check every message; the bad ones go to the dead-letter topic (durably);
2. in ONE PostgreSQL transaction: open the events' sealed fields with their people's data
   keys (``opening.py``; an erased person's open as erased), ask the person index which
   person each event is (an
   event keyed by another person id, a merge having moved its records since it was keyed,
   is put back on the topic under the right key and skipped here, so one person's events
   are applied in one partition only), archive the events (the archive says which are
   new), apply the new ones to every read model of the registry (timeline, identifiers,
   referrals, caseload, rules and the alerts they raise) that is in step on their
   partition, regroup the people a merge or separation in the batch concerns
   (``regroup.py``), record each read model's position and the consumer position;
3. after commit, publish the alert events the batch produced.

A redelivered message finds its event already archived, so its effects are not applied twice.
A message that makes processing fail (not the database or broker being down) is isolated by
re-running the batch one message at a time, and parked with the failure's type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from services.common import positions
from services.common.db import DATABASE_UNAVAILABLE
from services.common.dead_letters import (
    INTAKE,
    DeadLetterTopic,
    Parked,
    Rejected,
    record_dead_letters,
)
from services.common.kafka import BROKER_UNAVAILABLE
from services.common.positions import Move, PositionConflict
from services.common.records import Message
from services.common.serde.agency_event import read_event
from services.common.serde.avro import identity_codec
from services.common.tracked_consumer import Batch
from services.common.validation import message_refusal
from services.identity.codec import decode_identity_event
from services.identity.lookup import after_writer, recorded
from services.processor.adapters import read_model_positions, store
from services.processor.adapters.store import Received
from services.processor.metrics import PipelineMetrics
from services.processor.opening import Opener, people_of
from services.processor.read_models import Registry
from services.processor.regroup import Regroup, regroup

log = structlog.get_logger("joinedup.processor")

class NotYetResolved(RuntimeError):
    """An event whose identifiers the person index does not hold yet: the identity step
    forwards before its transaction commits, so the batch is retried once it has."""

    cause = "waiting for the identity step to record the events' people"


#: Failures of the servers or of the position, not of the message: the whole batch is retried
#: from the stored position, never parked. (Class 40 is a deadlock or serialisation failure.)
RETRY = (*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE, PositionConflict, NotYetResolved,
         asyncpg.exceptions.TransactionRollbackError,
         # a read model's tables were replaced under a prepared statement (a rebuild
         # switched over): the retry prepares it again
         asyncpg.exceptions.InvalidCachedStatementError)


def retryable(exc: BaseException) -> bool:
    """A failure of the servers or of the position (retry the batch), not of a message.
    DataError is an InterfaceError but means a value the driver cannot encode: the message's
    fault, so it is isolated and parked rather than retried for ever."""
    return isinstance(exc, RETRY) and not isinstance(exc, asyncpg.DataError)


@dataclass(frozen=True, slots=True)
class Decoded:
    messages: Sequence[Message]
    moves: Sequence[Move]
    received: list[Received]
    rejected: list[Rejected]
    regroups: list[Regroup] = dataclasses.field(default_factory=list)


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    alert_events: Sequence[object] = ()


AlertPublisher = Callable[[], Awaitable[object]]
#: puts messages back on the person-events topic, each under the person id given (awaited:
#: acknowledged before the batch's position moves past the originals)
Forward = Callable[[Sequence[tuple[Message, str]]], Awaitable[None]]


class BatchProcessor:
    def __init__(self, pool: asyncpg.Pool, dead_letters: DeadLetterTopic, consumer: str,
                 read_models: Registry, forward: Forward, opener: Opener,
                 publish_alerts: AlertPublisher | None = None,
                 metrics: PipelineMetrics | None = None) -> None:
        self._metrics = metrics  # events applied by type (services/processor/metrics.py)
        self._pool = pool
        self._opener = opener
        self._forward = forward
        self._dead_letters = dead_letters
        self._consumer = consumer
        self.read_models = read_models
        self._publish_alerts = publish_alerts

    async def prepare(self, batch: Batch) -> Decoded:
        """The CPU half of a batch (bytes to checked events). The intake runs it for the next
        batch while the previous batch's transaction waits on PostgreSQL."""
        received, rejected, regroups = await self._decode(batch.messages)
        return Decoded(batch.messages, batch.moves, received, rejected, regroups)

    async def process(self, batch: Batch) -> BatchResult:
        return await self.apply(await self.prepare(batch))

    async def apply(self, decoded: Decoded) -> BatchResult:
        messages = decoded.messages
        try:
            return await self._apply(decoded)
        except Exception as exc:
            if retryable(exc):
                raise
            log.warning("batch failed; isolating the message that fails", size=len(messages),
                        error=type(exc).__name__)
            total = BatchResult()
            for message, move in _one_by_one(decoded):
                result = await self._process_alone(message, move)
                total.applied += result.applied
                total.duplicates += result.duplicates
                total.parked += result.parked
            return total

    async def _process_alone(self, message: Message, move: Move) -> BatchResult:
        try:
            return await self._apply(await self.prepare(Batch([message], [move])))
        except Exception as exc:  # a poison message: park it, keep the worker going
            if retryable(exc):
                raise
            reason = f"processing failed: {type(exc).__name__}"
            log.error("message parked", topic=message.topic, partition=message.partition,
                      offset=message.offset, reason=reason)
            parked = await self._dead_letters.park(
                [Rejected.of(message, reason, INTAKE, type(exc))])
            async with self._pool.acquire() as conn, conn.transaction():
                steps = await read_model_positions.in_step(conn, self.read_models.names, [move])
                await record_dead_letters(conn, parked)
                await read_model_positions.advance(conn, steps.in_step, [move])  # past it
                await positions.advance(conn, self._consumer, [move])
            return BatchResult(parked=1)

    async def _apply(self, decoded: Decoded) -> BatchResult:
        received, rejected = decoded.received, decoded.rejected
        parked = await self._dead_letters.park(rejected)
        result = BatchResult(parked=len(rejected))
        models = self.read_models
        # Batches and the deadline timer take turns on rule state (see RuleStage).
        async with models.locked():
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    steps = await read_model_positions.in_step(conn, models.names,
                                                               decoded.moves)
                    models.follow(steps.generations)
                    received = await self._open(conn, received)
                    received = await self._resolve(conn, received)
                    archived = await store.archive(conn, received, self._opener)
                    fresh = archived.fresh
                    clashes = [_clash(item) for item in archived.clashes]
                    if clashes:  # parked before the position moves past them
                        parked += await self._dead_letters.park(clashes)
                        rejected = [*rejected, *clashes]
                    alerts = await models.apply(conn, fresh, steps.in_step) if fresh else []
                    if decoded.regroups:  # decided by a transaction that may be open
                        await after_writer(conn)
                    for job in decoded.regroups:
                        if await recorded(conn, job.change.change_id):
                            alerts += await regroup(conn, models, job, steps.in_step,
                                                    self._opener)
                        else:  # its decision rolled back: decided again, with its own message
                            log.warning("identity change not recorded; skipped",
                                        change=job.change.change_id, partition=job.partition)
                    result.alert_events = alerts
                    await record_dead_letters(conn, parked)
                    await read_model_positions.advance(conn, steps.in_step, decoded.moves)
                    clocks = _clocks(fresh)
                    await positions.advance(conn, self._consumer, [
                        dataclasses.replace(m, clock=clocks.get((m.topic, m.partition)))
                        for m in decoded.moves])
            except BaseException:
                models.rolled_back()
                raise
            models.committed()
        result.applied = len(fresh)
        result.duplicates = archived.duplicates
        if self._metrics is not None:
            self._metrics.applied((r.event.event_type for r in fresh), archived.duplicates)
        result.parked = len(rejected)
        if result.alert_events and self._publish_alerts is not None:
            try:
                await self._publish_alerts()  # drains the outbox the transaction just filled
            except RETRY as exc:  # committed: the alert events wait in the outbox
                log.warning("alert events wait in the outbox", error=type(exc).__name__)
        return result

    async def _open(self, conn: asyncpg.Connection, received: list[Received]
                    ) -> list[Received]:
        """The events opened with their people's keys. A key that does not exist belongs to
        a person decided by a transaction that may still be open: wait for it; if the key
        is still not there, that decision rolled back, and admission forwards the event
        again under the person it decides next: this copy is skipped."""
        opened = await self._opener.received(conn, received)
        if None in opened:
            await after_writer(conn)
            opened = await self._opener.received(conn, received)
        skipped = [r for r, o in zip(received, opened, strict=True) if o is None]
        for r in skipped:
            log.warning("event sealed by an identity decision that rolled back; skipped (it "
                        "is forwarded again)", topic=r.topic, partition=r.partition,
                        offset=r.offset)
        return [o for o in opened if o is not None]

    async def _resolve(self, conn: asyncpg.Connection, received: list[Received]
                       ) -> list[Received]:
        """Each event filed under the person it is now; those keyed by another person id
        are forwarded under the right one and left out here."""
        people = await people_of(conn, [r.event for r in received])
        if any(p is None or (r.key not in (None, p)) for r, p in zip(received, people,
                                                                  strict=True)):
            # resolved by a transaction that may still be open: wait for it, ask again
            await after_writer(conn)
            people = await people_of(conn, [r.event for r in received])
        if None in people:
            raise NotYetResolved("an event the person index does not hold yet")
        here: list[Received] = []
        elsewhere: list[tuple[Message, str]] = []
        for r, person in zip(received, people, strict=True):
            assert person is not None
            if r.message is None or r.key in (None, person):
                here.append(dataclasses.replace(r, event=r.event.for_person(person)))
            else:
                elsewhere.append((r.message, person))
        if elsewhere:
            await self._forward(elsewhere)
        return here

    async def _decode(self, messages: Sequence[Message]
                      ) -> tuple[list[Received], list[Rejected], list[Regroup]]:
        received: list[Received] = []
        rejected: list[Rejected] = []
        regroups: list[Regroup] = []
        for m in messages:
            if identity_codec().wrote(m.value) and m.key is not None:
                assert m.value is not None
                regroups.append(Regroup(m.key.decode(), decode_identity_event(m.value),
                                        m.topic, m.partition))
                continue
            event, reason = read_event(m.value)
            if event is not None:
                reason = message_refusal(event, m.key)
            if event is not None and reason is None and m.value is not None:
                received.append(Received(event, m.value, m.topic, m.partition, m.offset,
                                         message=m))
            else:
                log.warning("message parked", topic=m.topic, partition=m.partition,
                            offset=m.offset, reason=reason)
                rejected.append(Rejected.of(m, reason or "undecodable", INTAKE))
        return received, rejected, regroups


def _clocks(received: Sequence[Received]) -> dict[tuple[str, int], datetime]:
    clocks: dict[tuple[str, int], datetime] = {}
    for r in received:
        key = (r.topic, r.partition)
        clocks[key] = max(clocks.get(key, r.event.recorded_at), r.event.recorded_at)
    return clocks


def _clash(item: Received) -> Rejected:
    reason = ("refused: this agency already published a different event with this event id "
              "(event ids identify one event per agency)")
    log.warning("message parked", topic=item.topic, partition=item.partition,
                offset=item.offset, reason=reason)
    if item.message is not None:
        return Rejected.of(item.message, reason, INTAKE)
    return Rejected(Parked(item.topic, item.partition, item.offset, reason, INTAKE.name),
                    item.event.person_key.encode(), item.body)


def _one_by_one(decoded: Decoded) -> list[tuple[Message, Move]]:
    """Each message with the move that covers it alone (for isolating a poison message)."""
    starts = {(m.topic, m.partition): m.start for m in decoded.moves}
    single = []
    for message in decoded.messages:
        key = (message.topic, message.partition)
        single.append((message, Move(message.topic, message.partition, starts[key],
                                     message.offset + 1, message.digest)))
        starts[key] = message.offset + 1
    return single
