"""A read model registered on a system with history catches up from the archive, joins the
live pipeline while traffic keeps coming, and ends equal to what it would hold had it been
there from the start; the read models that were there are not touched."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import asyncpg

from services.common.events import AgencyEvent
from services.common.identifiers import make_nhs_number
from services.common.settings import Settings
from services.processor.adapters import read_model_positions
from services.processor.bootstrap import build_processor
from services.processor.read_models import Registry, read_models
from services.processor.rules_stage import RuleStage
from tests import factories as f
from tests.integration.processor.conftest import publish, register_sources, wait_for
from tests.integration.processor.test_read_model_registry import CREATE, tally

SOURCES = ("PRISON", "MENTAL_HEALTH", "HOUSING", "SUBSTANCE_USE")


def history(n: int, seed: int) -> list[AgencyEvent]:
    rng = random.Random(seed)
    people = [make_nhs_number(rng) for _ in range(12)]
    return [f.contact("attended", contact_id=f"c-{seed}-{i}", source=rng.choice(SOURCES),
                      nhs=rng.choice(people), at=f.T0 + i * timedelta(minutes=7))
            for i in range(n)]


def with_tally(stage: RuleStage | None) -> Registry:
    return Registry([*read_models(stage).models, tally()])


async def _history_applied(settings: Settings, pool: asyncpg.Pool,
                           events: list[AgencyEvent]) -> list[AgencyEvent]:
    """A system with history: ``events`` through a processor with the usual read models."""
    first = await build_processor(settings, migrate=False)
    await register_sources(first.pool, [(s.agency, s.service_kind)
                                        for s in f.SOURCES.values()])
    task = asyncio.create_task(first.run())
    await publish(settings, events)
    await wait_for(pool, "SELECT count(*) FROM event_archive", len(events))
    first.stopping.set()
    await asyncio.wait_for(task, 30)
    await first.close()
    return events


async def test_a_new_read_model_catches_up_and_joins_the_live_pipeline(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    settings = migrated.model_copy(update={"batch_max_events": 50})
    before = await _history_applied(settings, pool, history(300, seed=1))

    await pool.execute(CREATE)  # the new read model's migration
    second = await build_processor(settings, migrate=False, models=with_tally)
    statuses = dict(await pool.fetch("SELECT name, status FROM read_model"))
    assert statuses["agency-tally"] == "catching-up" and statuses["timeline"] == "live"
    task = asyncio.create_task(second.run())
    during = history(200, seed=2)
    try:
        await publish(settings, during[:100])  # live traffic while it catches up
        await wait_for(pool, "SELECT count(*) FROM read_model WHERE name = 'agency-tally'"
                       " AND status = 'live'", 1)
        await publish(settings, during[100:])  # and after it has joined
        everything = len(before) + len(during)
        await wait_for(pool, "SELECT count(*) FROM event_archive", everything)
        await wait_for(pool, "SELECT coalesce(sum(events), 0) FROM agency_tally", everything)
    finally:
        second.stopping.set()
        await asyncio.wait_for(task, 30)
        await second.close()

    archived = dict(await pool.fetch(
        "SELECT source_agency, count(*) FROM event_archive GROUP BY source_agency"))
    assert dict(await pool.fetch("SELECT agency, events FROM agency_tally")) == archived
    assert await pool.fetchval("SELECT count(*) FROM timeline_entry") == everything  # once each
    consumer = {r["partition"]: r["next_offset"] for r in await pool.fetch(
        "SELECT partition, next_offset FROM consumer_position WHERE consumer = $1",
        settings.processor_group)}
    positions = await read_model_positions.positions(pool, "agency-tally")
    assert {p.partition: p.next_offset for p in positions} == consumer  # in step everywhere
    for name in ("timeline", "caseload", "rules"):  # the others moved with the consumer
        assert {p.partition: p.next_offset
                for p in await read_model_positions.positions(pool, name)} == consumer


async def test_catching_up_waits_out_a_locked_table_and_the_worker_goes_on(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    """The new read model's table is locked while it catches up: its statements time out,
    the catch-up pauses with backoff (the health report says so) instead of ending the
    worker, the live pipeline applies new traffic meanwhile, and once the lock goes the
    read model catches up and joins, equal to the archive."""
    settings = migrated.model_copy(update={
        "batch_max_events": 50, "db_statement_timeout_ms": 300,
        "retry_initial_seconds": 0.05, "retry_max_seconds": 0.3})
    before = await _history_applied(settings, pool, history(200, seed=3))

    await pool.execute(CREATE)
    during = history(100, seed=4)
    async with pool.acquire() as locker:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE agency_tally IN ACCESS EXCLUSIVE MODE")
        second = await build_processor(settings, migrate=False, models=with_tally)
        task = asyncio.create_task(second.run())
        try:
            for _ in range(100):
                if not second.health.ready_component("catch-up"):
                    break
                await asyncio.sleep(0.1)
            assert not second.health.ready_component("catch-up")
            await publish(settings, during)  # the live pipeline is not held up
            await wait_for(pool, "SELECT count(*) FROM event_archive",
                           len(before) + len(during))
            assert not task.done()
        finally:
            await tx.rollback()
    try:
        await wait_for(pool, "SELECT count(*) FROM read_model WHERE name = 'agency-tally'"
                       " AND status = 'live'", 1)
        await wait_for(pool, "SELECT coalesce(sum(events), 0) FROM agency_tally",
                       len(before) + len(during))
        assert second.health.ready_component("catch-up")
    finally:
        second.stopping.set()
        await asyncio.wait_for(task, 30)
        await second.close()
    archived = dict(await pool.fetch(
        "SELECT source_agency, count(*) FROM event_archive GROUP BY source_agency"))
    assert dict(await pool.fetch("SELECT agency, events FROM agency_tally")) == archived
