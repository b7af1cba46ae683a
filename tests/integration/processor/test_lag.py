"""Consumer lag on the real broker equals the true backlog: records in the log that the
stored position (PostgreSQL) has not yet covered, counted record by record."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.consumer_watch import ConsumerWatch
from services.common.kafka import stop_consumer
from services.common.log_ends import log_ends
from services.common.settings import Settings
from tests.integration.processor.recorder import applied, produce, recording, until


async def backlog(bootstrap: str, tp: TopicPartition, position: int) -> int:
    """Records from `position` on, read one by one until the fetch says there are no more."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, position)
        count, nxt = 0, position
        while (highwater := consumer.highwater(tp)) is None or nxt < highwater:
            for record in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                count, nxt = count + 1, record.offset + 1
        return count
    finally:
        await stop_consumer(consumer)


async def test_lag_matches_the_records_not_yet_applied(migrated: Settings,
                                                       pool: asyncpg.Pool) -> None:
    topic = migrated.topics.person_events
    _, bootstrap = migrated.require_servers()
    async with recording(migrated, pool) as running:
        await produce(migrated, 0, 40)
        await until(lambda: running.consumer.caught_up_partitions() == [0, 1, 2, 3])
        assert len(await applied(pool)) == 40

        running.recorder.open.clear()  # hold the consumer: nothing more is applied
        await produce(migrated, 0, 300)
        await produce(migrated, 1, 7)
        await produce(migrated, 0, 25)
        watch = ConsumerWatch(running.consumer, migrated, pool, running.metrics)
        await watch.check()

        stored = {p: 40 if p == 0 else 0 for p in range(4)}
        for p in range(4):
            true_backlog = await backlog(bootstrap, TopicPartition(topic, p), stored[p])
            assert running.lag(p) == true_backlog
        assert (running.lag(0), running.lag(1), running.lag(2)) == (325, 7, 0)

        await produce(migrated, 2, 5)  # measured again, with the probe the watch keeps
        await watch.check()
        assert running.lag(2) == await backlog(bootstrap, TopicPartition(topic, 2), 0) == 5

        running.recorder.open.set()
        await until(lambda: _count(pool, 377))
        await watch.check()
        assert [running.lag(p) for p in range(4)] == [0, 0, 0, 0]
        await watch.close()


async def _count(pool: asyncpg.Pool, expected: int) -> bool:
    return len(await applied(pool)) >= expected


async def test_log_ends_are_the_high_watermarks(migrated: Settings) -> None:
    """Whatever ListOffsets says, the end is where the next record will go (on this Tansu
    build ListOffsets "latest" answers 121 here: the second batch's base offset + 1)."""
    topic = migrated.topics.person_events
    _, bootstrap = migrated.require_servers()
    await produce(migrated, 2, 120)
    await produce(migrated, 2, 30)
    tps = [TopicPartition(topic, p) for p in range(4)]
    ends = await log_ends(bootstrap, tps)
    assert ends == {tps[0]: 0, tps[1]: 0, tps[2]: 150, tps[3]: 0}
    assert await backlog(bootstrap, tps[2], 0) == 150
