"""The fault tier: the real embedded servers, with faults injected on purpose.

Tests that stop or restart a server get their own (a broker or a PostgreSQL of their own, so
the session's servers stay up for everyone else); the rest share the session's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer

from services.common.events import AgencyEvent
from services.common.kafka import stop_consumer
from services.common.serde.agency_event import decode_event
from services.common.serde.avro import identity_codec
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.processor.bootstrap import REKEYED, Processor, build_processor
from services.processor.domain.rules import (
    PersonRuleState,
    apply_event,
    default_pack_path,
    fire_due,
    load_rule_pack,
)
from services.processor.opening import Opener
from services.stack.broker import EmbeddedBroker
from services.stack.ports import free_port
from services.stack.postgres import EmbeddedPostgres
from tests.factories import SOURCES
from tests.integration.processor.conftest import register_sources

pytestmark = pytest.mark.faults

# Faults are retried fast in tests: the backoff schedule is not what is under test.
FAST_RETRY = {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data", durable=False)
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()


def restart_broker(broker: EmbeddedBroker, log_file: Path) -> EmbeddedBroker:
    """Kill the broker (memory storage: everything on it is gone) and start a new one on the
    same port, as a crash and a supervisor's restart would."""
    broker.kill()
    replacement = EmbeddedBroker(log_file, port=broker.port)
    replacement.start()
    return replacement


async def running_processor(settings: Settings, *, rules: bool = True) -> Processor:
    processor = await build_processor(settings, migrate=False, rules=rules)
    await register_sources(processor.pool, [(s.agency, s.service_kind)
                                            for s in SOURCES.values()])
    return processor


@dataclass
class InProcess:
    processor: Processor
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.processor.stopping.set()
        await asyncio.wait_for(self.task, 60)
        await self.processor.close()


async def start_in_process(settings: Settings, *, rules: bool = True) -> InProcess:
    processor = await running_processor(settings, rules=rules)
    task = asyncio.create_task(processor.run())
    return InProcess(processor, task)


@dataclass
class Worker:
    """A real `joinedup worker` process, with its health port and its peak memory."""

    process: subprocess.Popen[bytes]
    health_port: int
    log_file: Path
    rss_peak: int = 0

    def sample_rss(self) -> int:
        rss = psutil.Process(self.process.pid).memory_info().rss
        self.rss_peak = max(self.rss_peak, rss)
        return rss

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    async def ready(self) -> tuple[int, dict]:
        """/readyz's status and body; (0, {}) while nothing answers on the port yet."""
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.get(f"http://127.0.0.1:{self.health_port}/readyz")
        except httpx.TransportError:
            return 0, {}
        return response.status_code, response.json()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_worker(settings: Settings, data_dir: Path, **env: str) -> Worker:
    port = free_port()
    values = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
        "JOINEDUP_DB_SCHEMA": settings.db_schema,
        "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
        "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
        "JOINEDUP_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JOINEDUP_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "JOINEDUP_DATA_DIR": str(data_dir),
        "JOINEDUP_LOG_LEVEL": "WARNING",
        "JOINEDUP_LOG_JSON": "true",
        "JOINEDUP_WORKER_HEALTH_PORT": str(port),
        "JOINEDUP_RETRY_INITIAL_SECONDS": "0.1",
        "JOINEDUP_RETRY_MAX_SECONDS": "1.0",
        **env,
    }
    log_file = data_dir / f"worker-{port}.log"
    with open(log_file, "wb") as output:  # a file, not a pipe: nobody has to drain it
        process = subprocess.Popen(
            [sys.executable, "-m", "services.operations.cli", "worker"], env=values,
            stdout=output, stderr=subprocess.STDOUT)
    return Worker(process, port, log_file)


async def log_events(settings: Settings, bootstrap: str | None = None, idle_ms: int = 1500
                     ) -> list[tuple[int, int, AgencyEvent]]:
    """(partition, offset, event) for every agency event on the processor's topic, in log
    order, each filed under the person id it is keyed by."""
    return [(p, o, e) for p, o, e, _ in await log_records(settings, bootstrap, idle_ms)]


async def log_records(settings: Settings, bootstrap: str | None = None, idle_ms: int = 1500,
                      *, opened_only: bool = True) -> list[tuple[int, int, AgencyEvent, bool]]:
    """As ``log_events``, with whether the processor put the record there again under
    another person id (a merge had moved it, or it was keyed by a decision rolled back).
    The events are opened with their people's data keys, as the processor opens them; with
    ``opened_only`` those that open with no key (see below) are left out, else kept sealed."""
    consumer = AIOKafkaConsumer(
        settings.topics.person_events, bootstrap_servers=bootstrap or settings.kafka_bootstrap,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[int, int, AgencyEvent, bool]] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                break
            for tp, records in batch.items():
                found.extend((tp.partition, r.offset,
                              decode_event(r.value).for_person(r.key.decode()),
                              any(k == REKEYED for k, _ in r.headers or ()))
                             for r in records
                             if r.value and r.key and not identity_codec().wrote(r.value))
    finally:
        await stop_consumer(consumer)
    conn = await asyncpg.connect(settings.database_url,
                                 server_settings={"search_path": settings.db_schema})
    try:
        opened = await Opener(KeyRing(settings.key_encryption_key())).maybe(
            conn, [e for _, _, e, _ in found])
    finally:
        await conn.close()
    # one sealed by an identity decision that rolled back was skipped, as the processor
    # skips it: admission forwarded the event again
    found = [(p, o, e or sealed, again)
             for (p, o, sealed, again), e in zip(found, opened, strict=True)
             if e is not None or not opened_only]
    return sorted(found, key=lambda f: (f[0], f[1]))


def reference_alerts(log: Sequence[tuple[int, int, AgencyEvent]], now: datetime | None = None,
                     *, timer: bool = True) -> set[tuple[str, str, datetime]]:
    """What the pure engine says for a log ((partition, offset, event) in log order): each
    person's events folded in order (first copy of each event only: later copies are
    duplicates the archive recognises), then, with `timer`, what is due fired at `now` (the
    wall clock), or, when `now` is None, at each partition's stream clock (its latest
    recorded-at), as a worker on JOINEDUP_CLOCK=stream fires them."""
    pack = load_rule_pack(default_pack_path())
    states: dict[str, PersonRuleState] = {}
    partition_of: dict[str, int] = {}
    clocks: dict[int, datetime] = {}
    alerts: set[tuple[str, str, datetime]] = set()
    seen: set[tuple[str, str]] = set()
    for partition, _, event in log:
        key = (event.source.agency, event.event_id)
        if key in seen:
            continue
        seen.add(key)
        clocks[partition] = max(clocks.get(partition, event.recorded_at), event.recorded_at)
        # By the simulated person (their NHS number is on every event), not by the message
        # key: a batch forwarded before a commit that a kill prevented is forwarded again
        # under the person id drawn after the restart, so one person can have two keys.
        person = event.identifier_key
        partition_of[person] = partition
        state = states.get(person) or PersonRuleState(event.person_key)
        outcome = apply_event(pack, state, event, event.recorded_at)
        states[person] = outcome.state
        alerts |= {(a.alert_event_id, a.action, a.at) for a in outcome.alert_events}
    for person, state in states.items() if timer else ():
        at = now or clocks[partition_of[person]]
        alerts |= {(a.alert_event_id, a.action, a.at)
                   for _, a in fire_due(pack, state.expectations, at)}
    return alerts


async def counts(pool: asyncpg.Pool | asyncpg.Connection) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT (SELECT count(*) FROM event_archive) AS archive,"
        " (SELECT count(*) FROM timeline_entry) AS timeline,"
        " (SELECT count(DISTINCT event_id) FROM timeline_entry) AS distinct_timeline,"
        " (SELECT count(*) FROM dead_letter) AS parked")


async def wait_until(predicate, timeout: float = 60.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate.__name__}")
        await asyncio.sleep(every)
