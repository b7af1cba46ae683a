"""A slow database: the archive table locked by someone else while the worker has a backlog.
The worker's statements time out (JOINEDUP_DB_STATEMENT_TIMEOUT_MS), it retries with backoff
and says it is not ready, its memory stays bounded (it does not keep fetching what it cannot
apply), and once the lock goes everything is applied once. (The gateway's side, quick 503s
under a locked table, is test_gateway_locked_table.py.)"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.common.settings import Settings
from services.simulation import simulate
from tests.faults.conftest import counts, start_worker, wait_until
from tests.integration.processor.conftest import publish, register_sources

pytestmark = pytest.mark.faults
LOCK_SECONDS = 10.0


async def test_a_locked_table_is_waited_out_with_bounded_memory(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    events = simulate(seed=13, people=1500, months=6, start=datetime(2026, 1, 5, tzinfo=UTC))
    await register_sources(pool, {(e.source.agency, e.source.service_kind) for e in events})
    worker = start_worker(migrated, tmp_path, JOINEDUP_DB_STATEMENT_TIMEOUT_MS="2000",
                          JOINEDUP_BATCH_MAX_EVENTS="500")
    try:
        async def ready() -> bool:
            return (await worker.ready())[0] == 200
        await wait_until(ready, 60)
        baseline = worker.sample_rss()
        await publish(migrated, events)
        await wait_until(lambda: _archived(pool, 500), 60, 0.05)
        locker = await asyncpg.connect(migrated.database_url,
                                       server_settings={"search_path": migrated.db_schema})
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE event_archive IN ACCESS EXCLUSIVE MODE")
                locked_at = await _count(pool)
                not_ready = False
                started = time.monotonic()
                while time.monotonic() - started < LOCK_SECONDS:
                    assert worker.process.poll() is None, worker.log()[-3000:]
                    worker.sample_rss()
                    not_ready = not_ready or (await worker.ready())[0] == 503
                    await asyncio.sleep(0.25)
        finally:
            await locker.close()
        released = time.monotonic()
        await wait_until(lambda: _archived(pool, len(events)), 120)
        recovered = time.monotonic() - released
        found = await counts(pool)
    finally:
        code = worker.stop()
    assert code in (0, -15), worker.log()[-3000:]
    assert locked_at < len(events) // 2, "the lock must land mid-backlog"
    assert not_ready, "the worker never said it was not ready while the table was locked"
    assert found["archive"] == found["distinct_timeline"] == len(events)  # 0 lost, 0 doubled
    growth = (worker.rss_peak - baseline) / 2**20
    assert growth < 300, f"RSS grew by {growth:.0f} MiB under a locked table"
    print(f"\n[figures] locked table ({LOCK_SECONDS:.0f} s, backlog): {len(events)} published, "
          f"{found['archive']} archived, 0 lost, 0 doubled; not ready while locked; caught up "
          f"{recovered:.1f}s after release; worker RSS {baseline / 2**20:.0f} MiB at rest, "
          f"peak {worker.rss_peak / 2**20:.0f} MiB (+{growth:.0f} MiB)")


async def _count(pool: asyncpg.Pool) -> int:
    try:
        return int(await asyncio.wait_for(
            pool.fetchval("SELECT n_live_tup FROM pg_stat_user_tables "
                          "WHERE relname = 'event_archive' AND schemaname = current_schema()"),
            5))
    except TimeoutError:
        return -1


async def _archived(pool: asyncpg.Pool, n: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM event_archive")) >= n
