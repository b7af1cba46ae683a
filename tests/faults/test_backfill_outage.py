"""`joinedup backfill upload` when the broker goes away part-way through the upload.

The upload reads the backfill record (PostgreSQL) once, before it sends anything; after that
it only writes to the broker, in acknowledged batches of 500. So the outage that matters is
the broker's, between two batches: here it is killed and restarted (the embedded broker keeps
nothing: every topic comes back empty) once the first batch is acknowledged, and before the
supervisor has created the topics again. The command must exit non-zero with one line (no
traceback), never "uploaded" for events that are not on the log; run again once the broker
is back, every event is applied exactly once and the backfill is as an upload without the
outage leaves it (open, its history applied, its deadlines held, no alert).

Before: the command answered "uploaded 1200 events" with exit 0 although the broker had
restarted with no topics, and acknowledged the remaining writes to a topic nobody reads
(see TopicGuard in services/common/kafka.py)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.db import wait_and_migrate
from services.common.events import Source
from services.common.identifiers import make_nhs_number
from services.common.kafka import ensure_topics, stop_consumer
from services.common.settings import Settings
from services.operations.backfill_store import backfill_status, open_backfill
from services.stack.broker import EmbeddedBroker
from tests.conftest import Servers, make_settings
from tests.faults.conftest import FAST_RETRY, restart_broker, start_in_process, wait_until
from tests.faults.test_broker_restart import replaced  # noqa: F401 - a fixture
from tests.integration.processor.conftest import register_sources, wait_for
from tests.integration.processor.test_backfill import _contact, _discharge
from tests.integration.processor.test_backfill_cli import _lines

pytestmark = pytest.mark.faults

JOINING = Source("mh-trust-kirklees", "MENTAL_HEALTH", "RiO", "ward-2", "E08000034")
PEOPLE = 600  # a discharge and its follow-up each: 1,200 events, three batches
H = timedelta(hours=1)

# The real command, paused (by a file handshake) between its first batch, acknowledged, and
# its second, so that the test can take the broker away at exactly that point.
PAUSED = """
import asyncio, os, sys
from services.operations import backfill_cli
real, calls = backfill_cli.TopicGuard.require, [0]
async def require(self, topics):
    calls[0] += 1
    if calls[0] == 2:  # before the second batch: the first one is acknowledged
        open(os.environ["PAUSED"], "w").close()
        while not os.path.exists(os.environ["GO"]):
            await asyncio.sleep(0.02)
    return await real(self, topics)
backfill_cli.TopicGuard.require = require
from services.operations.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def _upload(env: dict[str, str], path: Path, *, paused: bool
                  ) -> asyncio.subprocess.Process:
    command = ["-c", PAUSED] if paused else ["-m", "services.operations.cli"]
    return await asyncio.create_subprocess_exec(
        sys.executable, *command, "backfill", "upload", "--agency", JOINING.agency, str(path),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def _finished(process: asyncio.subprocess.Process) -> tuple[int | None, str]:
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode()


def _said(out: str) -> list[str]:
    """The command's own lines: not the log records (JSON lines naming their logger)."""
    def logged(line: str) -> bool:
        try:
            return "logger" in json.loads(line)
        except (ValueError, TypeError):
            return False
    return [line for line in out.strip().splitlines() if not logged(line)]


async def _caught_up(settings: Settings, pool: asyncpg.Pool) -> bool:
    """The processor's stored positions are at the end of the agency's topic (admission)
    and of the person-events topic (the intake): nothing left that could still double."""
    topics = [settings.topics.agency(JOINING.agency), settings.topics.person_events]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, partitions included
        ends = await consumer.end_offsets([TopicPartition(t, p) for t in topics
                                           for p in consumer.partitions_for_topic(t) or ()])
    finally:
        await stop_consumer(consumer)
    assert {tp.topic for tp in ends} == set(topics)
    stored = {(r["topic"], r["partition"]): r["next_offset"] for r in await pool.fetch(
        "SELECT topic, partition, next_offset FROM consumer_position")}
    return all(stored.get((tp.topic, tp.partition), 0) >= end for tp, end in ends.items())


async def test_broker_restarted_between_two_batches_of_an_upload(
        servers: Servers, own_broker: EmbeddedBroker,
        replaced: list[EmbeddedBroker], tmp_path: Path) -> None:  # noqa: F811
    settings = make_settings(servers, kafka_bootstrap=own_broker.bootstrap, **FAST_RETRY)
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    running = await start_in_process(settings)
    pool = running.processor.pool
    cut_over = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    rng = random.Random(5)
    history = []
    for n in range(PEOPLE):
        nhs, at = make_nhs_number(rng), cut_over - timedelta(days=200) + n * H
        history += [_discharge(JOINING, nhs, at), _contact(JOINING, "follow_up", nhs, at + 24 * H)]
    path = _lines(tmp_path / "history.jsonl", history)
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
           "JOINEDUP_DB_SCHEMA": settings.db_schema,
           "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix, "JOINEDUP_LOG_LEVEL": "WARNING",
           "PAUSED": str(tmp_path / "paused"),
           "GO": str(tmp_path / "go")}
    archived = ("SELECT count(*) FROM event_archive WHERE source_agency = "
                f"'{JOINING.agency}'")
    try:
        await register_sources(pool, [(JOINING.agency, JOINING.service_kind)])
        async with pool.acquire() as conn:
            await open_backfill(conn, JOINING.agency, cut_over, "j.smith")

        upload = await _upload(env, path, paused=True)

        async def paused() -> bool:
            if upload.returncode is not None:
                pytest.fail((await _finished(upload))[1])
            return (tmp_path / "paused").exists()
        await wait_until(paused, 60, 0.05)  # the first batch is acknowledged
        replaced.append(restart_broker(own_broker, tmp_path / "tansu-2.log"))
        (tmp_path / "go").touch()
        code, out = await _finished(upload)
        assert code != 0, out  # never "uploaded" with part of it lost
        [said] = _said(out)  # one line (beside the driver's log records of the outage)
        assert said.startswith("joinedup backfill: the broker failed part-way") and (
            "run it again" in said), out
        assert "Traceback" not in out and not any(e.identifiers[0].value in out
                                                  for e in history), out

        await ensure_topics(settings)  # the supervisor's step for a restarted broker
        code, out = await _finished(await _upload(env, path, paused=False))
        assert (code, out.strip()) == (0, f"uploaded {len(history)} events of "
                                          f"{JOINING.agency}'s history"), out
        await wait_for(pool, archived, len(history))
        await wait_until(lambda: _caught_up(settings, pool), 60, 0.2)  # every copy seen
        async with pool.acquire() as conn:
            [status] = await backfill_status(conn, JOINING.agency)
            timeline = await conn.fetchrow(
                "SELECT count(*) AS entries, count(DISTINCT event_id) AS distinct_events "
                "FROM timeline_entry WHERE event_id = ANY($1::uuid[])",
                [e.event_id for e in history])
        assert await pool.fetchval(archived) == len(history)
        assert tuple(timeline) == (len(history), len(history))
        assert (status.cut_over, status.finished_at) == (cut_over, None)
        # each discharge's care-plan deadline held (its follow-up met the other), none raised
        assert (status.history_applied, status.held, status.historical_alerts) == (
            len(history), PEOPLE, 0), status
    finally:
        await running.stop()
