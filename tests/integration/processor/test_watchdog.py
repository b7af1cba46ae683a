"""The watchdog finds a stalled partition and recovers it, with the real broker and
PostgreSQL, and every record is applied exactly once afterwards."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.common.settings import Settings
from tests.conftest import Servers, make_settings
from tests.integration.processor.recorder import applied, produce, recording, until


@pytest.fixture
def settings(servers: Servers) -> Settings:
    # a short session: on Tansu a stopped member of generation 0 is not told to leave the
    # group (aiokafka sends LeaveGroup only from generation 1), so it stays till it expires
    return make_settings(servers, watchdog_interval_seconds=0.2, watchdog_stall_seconds=1.0,
                         kafka_session_timeout_ms=3000)


def every_record(counts: dict[int, int]) -> list[tuple[int, int]]:
    return sorted((p, o) for p, n in counts.items() for o in range(n))


async def test_a_partition_paused_behind_the_consumers_back_is_resumed(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    async with recording(migrated, pool) as running:
        await produce(migrated, 0, 30)
        await produce(migrated, 1, 10)
        await until(lambda: running.consumer.caught_up_partitions() == [0, 1, 2, 3])

        # the stall: partition 0 paused where the consumer does not know it
        kafka = running.consumer._consumer
        assert kafka is not None
        kafka.pause(TopicPartition(running.topic, 0))
        await produce(migrated, 0, 200)
        await produce(migrated, 1, 15)

        async def all_applied() -> bool:
            return len(await applied(pool)) >= 255
        await until(all_applied)
        assert running.sample("joinedup_consumer_stall_recoveries_total",
                              action="reposition") >= 1
        assert running.sample("joinedup_consumer_stall_recoveries_total",
                              action="restart") == 0
    assert await applied(pool) == every_record({0: 230, 1: 25})


async def test_a_hung_handler_is_recovered_by_restarting_the_consumer(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    async with recording(migrated, pool) as running:
        await produce(migrated, 2, 20)
        await until(lambda: running.consumer.caught_up_partitions() == [0, 1, 2, 3])

        running.recorder.hang_next = True  # the next batch's apply never returns
        await produce(migrated, 2, 100)
        await until(running.recorder.hung.is_set)
        await produce(migrated, 3, 40)

        async def all_applied() -> bool:
            return len(await applied(pool)) >= 160
        await until(all_applied, timeout=60)
        assert running.sample("joinedup_consumer_stall_recoveries_total",
                              action="restart") >= 1
    assert await applied(pool) == every_record({2: 120, 3: 40})


async def test_a_log_that_ends_before_the_stored_position_is_checked_and_replayed(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    """A consumer keeps its assignment while the log under it loses what was applied (a
    broker restarted on memory storage; here the stored position is moved beyond the log's end
    behind the running consumer's back, which is what the consumer then sees). Without a
    reassignment nothing else would check the log: the watchdog positions the partition
    again, the check finds the log replaced, and it is replayed from its start (applied twice
    here: the recorder keeps every apply; the processor's archive recognises a second copy)."""
    async with recording(migrated, pool) as running:
        await produce(migrated, 1, 20)
        await until(lambda: running.consumer.caught_up_partitions() == [0, 1, 2, 3])
        await pool.execute("UPDATE consumer_position SET next_offset = next_offset + 1000 "
                           "WHERE consumer = $1 AND partition = 1", running.consumer.name)

        async def checked() -> bool:
            return await pool.fetchval("SELECT count(*) FROM log_reset WHERE consumer = $1",
                                       running.consumer.name) == 1
        await until(checked)
        await produce(migrated, 1, 5)

        async def all_applied() -> bool:
            return len(await applied(pool)) >= 45
        await until(all_applied)
        assert running.sample("joinedup_consumer_stall_recoveries_total",
                              action="log-check") >= 1
        reset = await pool.fetchrow("SELECT stored_offset, log_start FROM log_reset")
        assert (reset["stored_offset"], reset["log_start"]) == (1020, 0)
    assert await applied(pool) == sorted(every_record({1: 20}) * 2 + [(1, o) for o in
                                                                       range(20, 25)])
