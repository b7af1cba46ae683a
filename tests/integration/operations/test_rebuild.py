"""`joinedup rebuild` on the real servers: every read model rebuilt from the archive (or the
Kafka log) into a shadow schema equals the live one (`--check` reports no difference), a
rebuild killed with SIGKILL halfway resumes and finishes equal, and the live schema is not
touched meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

import asyncpg
import pytest
from rich.console import Console

from services.common.kafka import make_producer
from services.common.settings import Settings
from services.operations import simulate
from services.operations.rebuild import Rebuild
from services.processor.bootstrap import Processor, build_processor
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
        await _timer_done(processor, settings)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    return unique


async def _timer_done(processor: Processor, settings: Settings) -> None:
    """Every partition caught up, then what the deadline timer would fire, fired."""
    for _ in range(600):
        if len(processor.intake.caught_up_partitions()) == settings.topic_partitions:
            break
        await asyncio.sleep(0.1)
    while await processor.deadlines.tick():
        pass


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

    # Killed with SIGKILL once it has rebuilt some but not all of the history (in two
    # processes over disjoint partitions: they stop when the one that started them is gone).
    process = await asyncio.create_subprocess_exec(
        *_cli(migrated, "--batch-size", "10", "--workers", "2"), env=_env(migrated),
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

    await asyncio.sleep(1.5)  # the orphaned processes notice and stop
    # Resumed: it goes on from the positions it recorded, and ends equal to the live ones.
    rebuild = Rebuild(migrated, console=Console(quiet=True), workers=2)
    applied = await rebuild.run()
    assert 0 < applied < archived * 6
    differences = await rebuild.check()
    assert {d.read_model for d in differences} == {
        "timeline", "identifiers", "referrals", "caseload", "fhir_tasks", "rules"}
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


async def test_switch_over_while_live_traffic_flows_loses_nothing(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    """Rebuild, more traffic, switch while the live processor runs, more traffic: the live
    read models (now the rebuilt tables) equal a fresh rebuild of everything archived, and
    the live processor went on from the right positions into the new tables."""
    settings = migrated.model_copy(update={"batch_max_events": 100})
    first = await _live_history(settings, pool)
    rebuild = Rebuild(settings, console=Console(quiet=True))
    await rebuild.run()
    generations = dict(await pool.fetch("SELECT name, generation FROM read_model"))

    processor = await build_processor(settings, migrate=False)
    task = asyncio.create_task(processor.run())
    later = simulate.generate(seed=12, people=60, months=3,
                              start=datetime(2026, 3, 2, tzinfo=UTC))
    more = len({(e.source.agency, e.event_id) for e in later})
    try:
        publishing = asyncio.create_task(
            simulate.publish_events(settings, later[: len(later) // 2], show_progress=False))
        await asyncio.sleep(0.3)
        replaced = await rebuild.switch()  # while the first half is being applied
        await publishing
        await simulate.publish_events(settings, later[len(later) // 2:], show_progress=False)
        await wait_for(pool, "SELECT count(*) FROM event_archive", first + more, timeout=120)
        await wait_for(pool, "SELECT count(*) FROM timeline_entry", first + more, timeout=60)
        await _timer_done(processor, settings)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()

    assert dict(await pool.fetch("SELECT name, generation FROM read_model")) == {
        name: generation + 1 for name, generation in generations.items()}
    assert await pool.fetchval(f'SELECT count(*) FROM "{replaced}".timeline_entry') >= first
    assert not await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
        rebuild.shadow)
    again = Rebuild(settings, shadow=f"{settings.db_schema}_again", console=Console(quiet=True))
    await again.run()
    assert [d for d in await again.check() if d.only_live or d.only_shadow] == []
    positions = {r["partition"]: r["next_offset"] for r in await pool.fetch(
        "SELECT partition, next_offset FROM consumer_position WHERE consumer = $1",
        settings.processor_group)}
    for name in ("timeline", "rules"):
        assert {r["partition"]: r["next_offset"] for r in await pool.fetch(
            "SELECT partition, next_offset FROM read_model_position WHERE read_model = $1",
            name)} == positions


async def test_a_dry_run_writes_nothing_and_raises_what_the_live_rules_raised(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    archived = await _live_history(migrated, pool)
    before = await _counts(pool, migrated.db_schema)
    schemas = await pool.fetchval("SELECT count(*) FROM information_schema.schemata")
    result = await Rebuild(migrated, console=Console(quiet=True)).dry_run()
    assert result.events == archived
    assert await _counts(pool, migrated.db_schema) == before  # the outbox included
    assert await pool.fetchval("SELECT count(*) FROM information_schema.schemata") == schemas
    assert result.changes["timeline"] == archived
    live = {(str(r["alert_event_id"]), r["action"], r["at"]) for r in await pool.fetch(
        "SELECT alert_event_id, action, at FROM alert_history")}
    assert {(a.alert_event_id, a.action, a.at) for a in result.alert_events} == live
    assert result.alerts_by_rule()  # a simulated population raises some
    code, out = await _run(_cli(migrated, "--dry-run"), _env(migrated))
    assert code == 0 and "nothing written" in out, out


async def _copies_and_garbage_on_the_log(settings: Settings, pool: asyncpg.Pool) -> None:
    """What a real log holds besides: copies of applied events (a producer's retry) and a
    message the live pipeline parks; both straight onto the topic the processor reads."""
    rows = await pool.fetch("SELECT person_key, body FROM event_archive ORDER BY seq LIMIT 5")
    producer = make_producer(settings)
    await producer.start()
    try:
        for row in rows:
            await producer.send_and_wait(settings.topics.person_events, row["body"],
                                         key=row["person_key"].encode())
        await producer.send_and_wait(settings.topics.person_events, b"not avro",
                                     key=rows[0]["person_key"].encode())
    finally:
        await producer.stop()


async def test_rebuild_from_the_log_equals_the_live_read_models_and_archive(
        migrated: Settings, pool: asyncpg.Pool) -> None:
    """From the Kafka log (in two processes): the copies on the log are told apart by the
    shadow's own archive, what the live pipeline parked is skipped, and the read models and
    the rebuilt archive equal the live ones. The shadow is then switched to while live."""
    archived = await _live_history(migrated, pool)
    await _copies_and_garbage_on_the_log(migrated, pool)
    processor = await build_processor(migrated, migrate=False)
    task = asyncio.create_task(processor.run())
    try:  # the live pipeline reads past them: one parked, the copies not applied
        await wait_for(pool, "SELECT count(*) FROM dead_letter", 1, timeout=60)
        await _timer_done(processor, migrated)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    assert await pool.fetchval("SELECT count(*) FROM event_archive") == archived
    live_before = await _counts(pool, migrated.db_schema)

    rebuild = Rebuild(migrated, console=Console(quiet=True), workers=2, source="log",
                      batch_size=50)
    applied = await rebuild.run()
    assert applied == await pool.fetchval(
        "SELECT sum(next_offset) FROM consumer_position WHERE consumer = $1",
        migrated.processor_group) * 6  # every log record, for each of the six read models
    differences = {(d.read_model, d.table): d for d in await rebuild.check()}
    assert ("archive", "event_archive") in differences
    assert [d for d in differences.values() if d.only_live or d.only_shadow] == []
    assert await pool.fetchval(
        f'SELECT count(*) FROM "{rebuild.shadow}".event_archive') == archived
    assert await _counts(pool, migrated.db_schema) == live_before

    # A shadow is built from one source: the archive's rebuild refuses this one.
    code, out = await _run(_cli(migrated, "--source", "archive"), _env(migrated))
    assert code == 2 and "rebuilt from the log" in out, out
    code, out = await _run(_cli(migrated, "--source", "log", "--check"), _env(migrated))
    assert code == 0 and "no differences" in out, out

    await rebuild.switch()
    assert await _counts(pool, migrated.db_schema) == live_before
    positions = dict(await pool.fetch(
        "SELECT partition, next_offset FROM consumer_position WHERE consumer = $1",
        migrated.processor_group))
    assert dict(await pool.fetch("SELECT partition, next_offset FROM read_model_position "
                                 "WHERE read_model = 'rules'")) == positions
