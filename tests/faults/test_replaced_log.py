"""A broker that restarts on memory storage comes back with empty topics: every stored
position points past the new log's end (or, once the new log has grown, onto other records).
The consumer must notice before applying anything, say so loudly, and replay the new log
from its start (the archive recognises events applied before); it silently ignored 1,200
events that way before. With JOINEDUP_ON_LOG_RESET=refuse it keeps the partition paused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.stack.broker import EmbeddedBroker
from tests.conftest import Servers, make_settings
from tests.faults.conftest import (
    FAST_RETRY,
    counts,
    restart_broker,
    start_in_process,
    wait_until,
)
from tests.faults.test_positions import people_events
from tests.integration.processor.conftest import publish

pytestmark = pytest.mark.faults


async def _settings(servers: Servers, broker: EmbeddedBroker, **overrides: object) -> Settings:
    from services.common.db import wait_and_migrate

    settings = make_settings(servers, kafka_bootstrap=broker.bootstrap, batch_max_events=200,
                             **FAST_RETRY, **overrides)
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    return settings


async def _archived(pool: asyncpg.Pool, schema: str, n: int) -> None:
    async def enough() -> bool:
        return await pool.fetchval(f'SELECT count(*) FROM "{schema}".event_archive') >= n
    await wait_until(enough, 90)


async def test_positions_beyond_a_new_logs_end_replay_it(
        servers: Servers, own_broker: EmbeddedBroker, pool: asyncpg.Pool, tmp_path: Path
        ) -> None:
    settings = await _settings(servers, own_broker)
    before, after = people_events(300, seed=1), people_events(200, seed=2)
    await publish(settings, before)
    running = await start_in_process(settings, rules=False)
    broker = own_broker
    try:
        await _archived(pool, settings.db_schema, 300)
        broker = restart_broker(own_broker, tmp_path / "tansu-2.log")
        await ensure_topics(settings)   # what `joinedup up` does for a restarted broker
        await publish(settings, after)  # the new log: offsets from 0 again, well below 300
        await _archived(pool, settings.db_schema, 500)
    finally:
        await running.stop()
        broker.stop()
    schema = settings.db_schema
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        found = await counts(conn)
        resets = await conn.fetch("SELECT partition, stored_offset, log_start, reason "
                                  "FROM log_reset ORDER BY partition")
        tracked = await conn.fetchval(
            "SELECT sum(next_offset) FROM consumer_position WHERE consumer = $1",
            settings.processor_group)
    finally:
        await conn.close()
    assert found["archive"] == found["distinct_timeline"] == 500
    assert resets, "the replaced log must be recorded"
    assert all(r["log_start"] == 0 and r["stored_offset"] > 0 for r in resets)
    assert tracked == 200  # positions now count the new log only
    print(f"\n[figures] broker restarted empty (positions beyond the new log's end): 300 "
          f"before, 200 on the new log, {found['archive']} archived, 0 lost, 0 doubled; "
          f"{len(resets)} replaced logs detected and recorded")


async def test_a_new_log_longer_than_the_stored_position_is_recognised_by_its_anchor(
        servers: Servers, own_broker: EmbeddedBroker, pool: asyncpg.Pool,
        tmp_path: Path) -> None:
    """The worker is down while the new log grows past the old positions: offsets alone
    look fine, only the record below each position tells the logs apart."""
    settings = await _settings(servers, own_broker)
    before, after = people_events(200, seed=4), people_events(800, seed=5)
    await publish(settings, before)
    running = await start_in_process(settings, rules=False)
    await _archived(pool, settings.db_schema, 200)
    await running.stop()
    broker = restart_broker(own_broker, tmp_path / "tansu-2.log")
    try:
        await ensure_topics(settings)
        await publish(settings, after)
        running = await start_in_process(settings, rules=False)
        try:
            await _archived(pool, settings.db_schema, 1000)
        finally:
            await running.stop()
    finally:
        broker.stop()
    count = await pool.fetchval(f'SELECT count(*) FROM "{settings.db_schema}".log_reset')
    assert count >= 1


async def test_refuse_policy_keeps_a_replaced_log_paused_and_not_ready(
        servers: Servers, own_broker: EmbeddedBroker, pool: asyncpg.Pool,
        tmp_path: Path) -> None:
    settings = await _settings(servers, own_broker, on_log_reset="refuse")
    schema = settings.db_schema
    await publish(settings, people_events(100, seed=6))
    running = await start_in_process(settings, rules=False)
    broker = own_broker
    try:
        await _archived(pool, schema, 100)
        used = {r[0] for r in await pool.fetch(
            f'SELECT partition FROM "{schema}".consumer_position WHERE next_offset > 0 '
            "AND consumer = $1", settings.processor_group)}
        broker = restart_broker(own_broker, tmp_path / "tansu-2.log")
        await ensure_topics(settings)
        await publish(settings, people_events(50, seed=7))

        async def refused() -> set[int]:
            found = {r[0] for r in await pool.fetch(
                f'SELECT partition FROM "{schema}".log_reset WHERE log_start IS NULL '
                "AND consumer = $1", settings.processor_group)}
            return found if found == used else set()
        await wait_until(refused, 60)
        assert not running.processor.health.ready
        assert {tp.partition for tp in running.processor.intake.waiting} == used

        async def admission_refused() -> bool:  # its agency topic was replaced too
            return bool(running.processor.admission.waiting) and bool(await pool.fetchval(
                f'SELECT count(*) FROM "{schema}".log_reset WHERE consumer = $1',
                settings.admission_group))
        await wait_until(admission_refused, 30)
        await asyncio.sleep(1.0)  # a refused partition must stay paused, not catch up
        from_refused = await pool.fetchval(
            f'SELECT count(*) FROM "{schema}".event_archive WHERE kafka_partition = ANY($1)',
            list(used))
    finally:
        await running.stop()
        broker.stop()
    assert from_refused == 100  # the old log's events only: nothing from the refused new log
