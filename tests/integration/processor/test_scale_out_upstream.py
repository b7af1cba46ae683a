"""The deadline timer's question to the whole admission group (services/processor/upstream.py),
against the real broker and PostgreSQL: clear only when every agency partition any admission
worker tracks has been forwarded to the true end of its log."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from aiokafka import TopicPartition

from services.common import positions
from services.common.log_ends import log_ends
from services.common.settings import Settings
from services.processor.upstream import AdmissionBacklog
from services.simulation import simulate
from tests.integration.processor.conftest import publish


async def test_clear_only_when_every_tracked_agency_partition_is_forwarded(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    events = simulate(seed=3, people=30, months=2, start=datetime(2026, 1, 5, tzinfo=UTC))
    await publish(migrated, events)
    topics = sorted({migrated.topics.agency(e.source.agency) for e in events})
    partitions = [TopicPartition(t, p) for t in topics for p in range(migrated.topic_partitions)]
    ends = await log_ends(migrated, partitions)
    assert sum(ends.values()) == len(events)
    # as two admission workers leave them: all positioned, one partition not forwarded yet
    behind = next(tp for tp in partitions if ends[tp] > 0)
    await positions.start(pool, migrated.admission_group,
                          {(tp.topic, tp.partition): ends[tp] - (tp == behind)
                           for tp in partitions})
    backlog = AdmissionBacklog(migrated, pool, every=0)
    try:
        assert not await backlog.clear()
        await pool.execute("UPDATE consumer_position SET next_offset = next_offset + 1"
                           " WHERE consumer = $1 AND topic = $2 AND partition = $3",
                           migrated.admission_group, behind.topic, behind.partition)
        assert await backlog.clear()
        # another worker's processor group or a stage of another name is not admission
        await positions.start(pool, migrated.processor_group, {(behind.topic, 99): 0})
        assert await backlog.clear()
    finally:
        await backlog.close()


async def test_a_clear_answer_is_trusted_for_its_interval_only(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    events = simulate(seed=4, people=10, months=1, start=datetime(2026, 1, 5, tzinfo=UTC))
    await publish(migrated, events)
    topic = migrated.topics.agency(events[0].source.agency)
    await positions.start(pool, migrated.admission_group,
                          {(topic, p): 0 for p in range(migrated.topic_partitions)})
    ends = await log_ends(migrated, [TopicPartition(topic, p)
                                     for p in range(migrated.topic_partitions)])
    for tp, end in ends.items():
        await pool.execute("UPDATE consumer_position SET next_offset = $4"
                           " WHERE consumer = $1 AND topic = $2 AND partition = $3",
                           migrated.admission_group, tp.topic, tp.partition, end)
    trusting, measuring = (AdmissionBacklog(migrated, pool, every=600),
                           AdmissionBacklog(migrated, pool, every=0))
    try:
        assert await trusting.clear() and await measuring.clear()
        await publish(migrated, [e for e in events
                                 if migrated.topics.agency(e.source.agency) == topic])
        # events published after a clear answer are live ones (the publishing grace's)
        assert await trusting.clear()
        assert not await measuring.clear()
    finally:
        await trusting.close()
        await measuring.close()
