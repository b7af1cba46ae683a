"""The dry-run sink: read models folded over recorded history in memory, nothing written.

The same folds the live pipeline applies (the registry's, in the order the pipeline applied
the events, partition by partition), with their states held in memory between batches
instead of loaded from and saved to PostgreSQL. Nothing is written and nothing is published:
the alert events the rules raise are counted and returned, for a "what would happen" report.
With the rules it ends with the sweep the deadline timer would have made by ``now``.

History comes from the event archive (``archived``: dependable, spans a replaced log) or
the Kafka log (``logged``: up to where the live pipeline stands), as one iterator of event
batches in the live pipeline's order, so the dry run, the rule what-if (``what_if``) and the
replay from a time (``services/operations/replay.py``) fold the same history the same way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from aiokafka import TopicPartition

from projections.queries import read_models as read_sql
from projections.queries import rebuild as sql
from projections.queries import replay as replay_sql
from services.alerts.events import AlertEvent
from services.common.db import BoundedPool
from services.common.events import AgencyEvent
from services.common.kafka import make_consumer, stop_consumer
from services.common.records import Message
from services.common.serde.agency_event import read_event
from services.common.serde.avro import identity_codec
from services.common.settings import Settings
from services.common.validation import message_refusal
from services.operations.what_if import PackRun, compare, report
from services.processor.domain.rules import Outcome, RulePack, fire_due
from services.processor.opening import Opener, people_of
from services.processor.read_models import Registry
from services.processor.sources import ArchiveSource, LogDiffers

#: where the history is read: a command's pool, or the read API's (bounded waits)
Pool: TypeAlias = asyncpg.Pool | BoundedPool
#: history as batches of events, in the order the live pipeline applied them
History = Callable[[asyncpg.Connection], AsyncIterator[list[AgencyEvent]]]


def archived(topic: str, opener: Opener | None, batch_size: int = 5000) -> History:
    """The archive, partition by partition in ``seq`` order. Without an opener the events
    stay sealed: enough for the rules, which read only codes kept in the clear
    (``services/common/serde/sealing.py``), and no data key is read."""
    async def batches(conn: asyncpg.Connection) -> AsyncIterator[list[AgencyEvent]]:
        source = ArchiveSource(topic, opener or Opener(None))
        partitions = [r["kafka_partition"] for r in await conn.fetch(sql.ARCHIVED_PARTITIONS,
                                                                     topic)]
        for partition in partitions:
            rows = await conn.fetch(read_sql.ARCHIVE_AFTER, topic, partition, 0, batch_size)
            while rows:
                events = [source.received(row, partition).event for row in rows]
                if opener is not None:
                    events = await opener.events(conn, events)
                # PostgreSQL reads the next batch while the caller folds this one (profiled:
                # the fetch was a fifth of a what-if's time)
                ahead = asyncio.ensure_future(conn.fetch(
                    read_sql.ARCHIVE_AFTER, topic, partition, rows[-1]["seq"], batch_size))
                await asyncio.sleep(0)  # the query is sent
                try:
                    yield events
                except BaseException:
                    ahead.cancel()
                    raise
                rows = await ahead
    return batches


@dataclass
class DryRun:
    events: int = 0
    changes: Counter[str] = field(default_factory=Counter)   # read model -> changes folded
    alert_events: list[AlertEvent] = field(default_factory=list)

    def alerts_by_rule(self) -> Counter[tuple[str, str]]:
        return Counter((a.rule_id, a.action) for a in self.alert_events)


@dataclass
class Folding:
    """Every read model of a registry folded in memory, batch after batch."""

    registry: Registry
    states: dict[str, dict[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = {m.name: {} for m in self.registry.models}

    def fold(self, events: list[AgencyEvent], into: DryRun) -> None:
        into.events += len(events)
        for model in self.registry.models:
            changes = model.fold_all(self.states[model.name], events)
            into.changes[model.name] += len(changes)
            into.alert_events += [a for c in changes if isinstance(c, Outcome)
                                  for a in c.alert_events]

    def sweep(self, pack: RulePack, now: datetime) -> list[AlertEvent]:
        """What the deadline timer would have fired by ``now`` (with the rules)."""
        if "rules" not in self.registry.names:
            return []
        return [alert for state in self.states["rules"].values()
                for _, alert in fire_due(pack, state.expectations, now)]


async def dry_run(pool: asyncpg.Pool, registry: Registry, topic: str, pack: RulePack,
                  now: datetime, opener: Opener, batch_size: int = 5000) -> DryRun:
    folding, result = Folding(registry), DryRun()
    async with pool.acquire() as conn:
        async for events in archived(topic, opener, batch_size)(conn):
            folding.fold(events, result)
    result.alert_events += folding.sweep(pack, now)
    return result


@dataclass
class WhatIf:
    """Two packs folded side by side over the same history, swept at the same ``now``."""

    events: int
    now: datetime
    current: PackRun
    changed: PackRun


async def what_if(pool: Pool, history: History, current: RulePack,
                  changed: RulePack, at: datetime | None = None) -> WhatIf:
    """Only the rules read model (it depends on no other), each event decoded once and folded
    by both packs. ``now`` is ``at``, or the stream clock's end (the latest recorded-at)."""
    mine, theirs = PackRun(current), PackRun(changed)
    events, clock = 0, None
    async with pool.acquire() as conn:
        async for batch in history(conn):
            events += len(batch)
            mine.fold(batch)
            theirs.fold(batch)
            latest = max(e.recorded_at for e in batch)
            clock = latest if clock is None or latest > clock else clock
    now = at or clock
    if now is None:
        raise ValueError("no recorded history to fold, and no --at to compare at")
    mine.finish(now)
    theirs.finish(now)
    return WhatIf(events, now, mine, theirs)


async def what_if_report(pool: Pool, history: History, current: RulePack,
                         changed: RulePack, *, rule: str | None = None,
                         since: datetime | None = None, at: datetime | None = None
                         ) -> dict[str, object]:
    """The what-if as the CLI's ``--json`` and the API answer it: counts only."""
    if rule is not None and rule not in current.by_id and rule not in changed.by_id:
        raise ValueError(f"no rule {rule!r} in the current pack or the changed one")
    result = await what_if(pool, history, current, changed, at)
    differences = compare(result.current, result.changed, rule=rule, since=since)
    return report(differences, events=result.events, now=result.now, since=since,
                  current=current, changed=changed)


def logged(topic: str, consumer: str, settings: Settings, opener: Opener,
           batch_size: int = 5000, read_timeout: float = 30.0) -> History:
    """The Kafka log, partition by partition from offset 0 up to the live pipeline's position
    (``consumer_position``), through the live pipeline's decisions again, read only: what it
    parked (``dead_letter``) and identity changes are skipped, every other message must
    decode and pass the checks, a copy of an event already read (same agency and event id) is
    skipped, and each event is filed under the person the index resolves it to now. A log
    replaced since (``log_reset``), or one that no longer starts at offset 0, is refused: the
    archive holds what was applied."""
    async def batches(conn: asyncpg.Connection) -> AsyncIterator[list[AgencyEvent]]:
        if await conn.fetchrow(read_sql.LOG_REPLACED, consumer, topic) is not None:
            raise LogDiffers("the log was replaced since it was applied: use --source archive")
        kafka = make_consumer(settings, group_id=None, enable_auto_commit=False,
                              auto_offset_reset="earliest",
                              max_partition_fetch_bytes=4 * 1024 * 1024)
        await kafka.start()
        try:
            seen: set[tuple[str, str]] = set()
            for row in await conn.fetch(replay_sql.CONSUMER_POSITIONS, consumer, topic):
                tp, until = TopicPartition(topic, row["partition"]), row["next_offset"]
                kafka.assign([tp])
                kafka.seek(tp, 0)
                offset = 0
                while offset < until:
                    got = await kafka.getmany(tp, timeout_ms=int(read_timeout * 1000),
                                              max_records=batch_size)
                    messages = [Message.of(r) for r in got.get(tp, ()) if r.offset < until]
                    if not messages or (offset == 0 and messages[0].offset != 0):
                        raise LogDiffers(f"partition {tp.partition}: offset {offset} is not in "
                                         f"the log any more: use --source archive")
                    offset = messages[-1].offset + 1
                    yield await _admitted(conn, messages, opener, seen)
        finally:
            await stop_consumer(kafka)
    return batches


async def _admitted(conn: asyncpg.Connection, messages: list[Message], opener: Opener,
                    seen: set[tuple[str, str]]) -> list[AgencyEvent]:
    first, last = messages[0], messages[-1]
    parked = {r["kafka_offset"] for r in await conn.fetch(
        read_sql.PARKED_BETWEEN, first.topic, first.partition, first.offset, last.offset + 1)}
    received = []
    for m in messages:
        if m.offset in parked or identity_codec().wrote(m.value):
            continue
        event, reason = read_event(m.value)
        if event is not None:
            reason = message_refusal(event, m.key)
        if event is None or reason is not None or m.value is None:
            raise LogDiffers(f"partition {m.partition}: the message at offset {m.offset} is "
                             f"refused ({reason}) but the live pipeline did not park it")
        if (event.source.agency, event.event_id) not in seen:
            seen.add((event.source.agency, event.event_id))
            received.append(event)
    opened = await opener.events(conn, received)
    people = await people_of(conn, opened)
    if None in people:
        raise LogDiffers("an event the person index does not hold, which the live pipeline "
                         "applied: use --source archive")
    return [e.for_person(p) for e, p in zip(opened, people, strict=True) if p is not None]
