"""`joinedup rebuild` on the real servers: every read model rebuilt from the archive into a
shadow schema equals the live one (`--check` reports no difference), a rebuild killed with
SIGKILL halfway resumes and finishes equal, and the live schema is not touched meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

import asyncpg
import pytest
from rich.console import Console

from services.common.settings import Settings
from services.operations import simulate
from services.operations.rebuild import Rebuild
from services.processor.bootstrap import build_processor
from tests.integration.processor.conftest import wait_for

pytestmark = pytest.mark.integration

LIVE_TABLES = ("timeline_entry", "person_identifier", "referral", "referral_history",
               "caseload", "expectation", "rule_marker", "alert", "alert_history",
               "alert_outbox")


async def _live_history(settings: Settings, pool: asyncpg.Pool) -> int:
    """A simulated population through the live processor, deadlines fired as the timer
    would; returns the number of events archived."""
    await simulate.register_simulated_agencies(settings)
    events = simulate.generate(seed=11, people=100, months=6,
                               start=datetime(2026, 1, 5, tzinfo=UTC))
    unique = len({(e.source.agency, e.event_id) for e in events})
    processor = await build_processor(settings, migrate=False)
    task = asyncio.create_task(processor.run())
    try:
        await simulate.publish_events(settings, events, show_progress=False)
        await wait_for(pool, "SELECT count(*) FROM event_archive", unique, timeout=120)
        for _ in range(600):  # every partition caught up, then the timer's work done
            if len(processor.intake.caught_up_partitions()) == settings.topic_partitions:
                break
            await asyncio.sleep(0.1)
        while await processor.deadlines.tick():
            pass
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    return unique


def _cli(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "services.operations.cli", "rebuild", *args]


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": settings.database_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
            "JOINEDUP_DB_SCHEMA": settings.db_schema,
            "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
            "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
            "JOINEDUP_LOG_LEVEL": "WARNING"}


async def _run(command: list[str], env: dict[str, str]) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode()


async def _counts(pool: asyncpg.Pool, schema: str) -> dict[str, int]:
    return {t: await pool.fetchval(f'SELECT count(*) FROM "{schema}"."{t}"')
            for t in LIVE_TABLES}


async def test_rebuild_killed_halfway_resumes_and_equals_the_live_read_models(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    archived = await _live_history(migrated, pool)
    assert archived > 800
    live_before = await _counts(pool, migrated.db_schema)
    assert live_before["alert"] > 0 and live_before["expectation"] > 0
    shadow = f"{migrated.db_schema}_rebuild"

    # Killed with SIGKILL once it has rebuilt some but not all of the history.
    process = await asyncio.create_subprocess_exec(
        *_cli(migrated, "--batch-size", "10"), env=_env(migrated),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(1200):
            await asyncio.sleep(0.05)
            try:  # the shadow's positions, once its tables exist
                done = await pool.fetchval("SELECT coalesce(sum(archive_seq), 0) FROM "
                                           f'"{shadow}".read_model_position')
            except asyncpg.UndefinedTableError:
                continue
            if done:
                break
        process.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(process.wait(), 30)
    statuses = dict(await pool.fetch(f'SELECT name, status FROM "{shadow}".read_model'))
    assert "catching-up" in statuses.values(), "killed before it finished"

    # Resumed: it goes on from the positions it recorded, and ends equal to the live ones.
    rebuild = Rebuild(migrated, console=Console(quiet=True))
    applied = await rebuild.run()
    assert 0 < applied < archived * 5
    differences = await rebuild.check()
    assert {d.read_model for d in differences} == {
        "timeline", "identifiers", "referrals", "caseload", "rules"}
    assert [d for d in differences if d.only_live or d.only_shadow] == []
    code, out = await _run(_cli(migrated, "--check"), _env(migrated))
    assert code == 0, out
    assert "no differences" in out

    # The live schema was not touched; the shadow's outbox was never published from.
    assert await _counts(pool, migrated.db_schema) == live_before
    statuses = dict(await pool.fetch(f'SELECT name, status FROM "{shadow}".read_model'))
    assert set(statuses.values()) == {"live"}

    # A difference is reported, per read model.
    await pool.execute(f'DELETE FROM "{shadow}".caseload WHERE ctid IN '
                       f'(SELECT ctid FROM "{shadow}".caseload LIMIT 2)')
    code, out = await _run(_cli(migrated, "--check"), _env(migrated))
    assert code == 1 and "1 table(s) differ" in out
    [caseload] = [d for d in await rebuild.check() if d.only_live]
    assert (caseload.read_model, caseload.only_live, caseload.only_shadow) == ("caseload", 2, 0)
    await rebuild.drop()
    assert not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
        shadow)
