"""Scale-out on one machine: real `joinedup worker` processes in one consumer group over a
person-events topic of six partitions, on the embedded broker and PostgreSQL.

Three workers share the log (each applies some of it) with every event applied once, each
person's events in one partition and in log order, and the rules' outcome the pure engine's
for that log. Of two workers, one is killed with SIGKILL mid-stream: the other takes its
partitions over from the positions in PostgreSQL, finds the rule state there, and its
deadline timer fires the taken-over partitions: nothing lost, nothing doubled.
"""

from __future__ import annotations

import signal
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.events import AgencyEvent
from services.common.settings import Settings
from services.simulation import simulate
from tests.conftest import Servers, make_settings
from tests.faults.conftest import (
    Worker,
    log_events,
    log_records,
    reference_alerts,
    start_worker,
    wait_until,
)
from tests.integration.processor.conftest import publish, register_sources, wait_for

pytestmark = pytest.mark.faults
PARTITIONS = 6
# A killed member holds its partitions until its session times out: keep that short.
GROUP = {"JOINEDUP_TOPIC_PARTITIONS": str(PARTITIONS), "JOINEDUP_BATCH_MAX_EVENTS": "200",
         "JOINEDUP_KAFKA_SESSION_TIMEOUT_MS": "4000",
         "JOINEDUP_KAFKA_HEARTBEAT_INTERVAL_MS": "400"}


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return make_settings(servers, topic_partitions=PARTITIONS)


async def _published(settings: Settings, pool: asyncpg.Pool, seed: int, people: int
                     ) -> list[AgencyEvent]:
    events = simulate(seed=seed, people=people, months=6, start=datetime(2026, 1, 5, tzinfo=UTC))
    await register_sources(pool, {(e.source.agency, e.source.service_kind) for e in events})
    await publish(settings, events)
    return events


async def _applied_by(worker: Worker, consumer: str) -> float:
    """Records the worker's intake applied (its /metrics; 0 while it is not serving yet)."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{worker.health_port}/metrics")).text
    except httpx.TransportError:
        return 0.0
    return sum(s.value for f in text_string_to_metric_families(text)
               if f.name == "joinedup_consumer_records"
               for s in f.samples
               if s.name.endswith("_total") and s.labels.get("consumer") == consumer)


async def _assert_exactly_once_in_order(settings: Settings, pool: asyncpg.Pool,
                                        events: list[AgencyEvent]) -> None:
    """Every event archived and on the timeline once; each simulated person one person id,
    all their events from one partition, applied in log order; every record of the log
    applied (the positions); the alerts the pure engine's for that log."""
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM event_archive) AS archive,"
        " (SELECT count(*) FROM timeline_entry) AS timeline,"
        " (SELECT count(DISTINCT event_id) FROM timeline_entry) AS distinct_timeline,"
        " (SELECT count(*) FROM dead_letter) AS parked,"
        " (SELECT coalesce(sum(next_offset), 0) FROM consumer_position"
        "  WHERE consumer = $1) AS tracked", settings.processor_group)
    assert counts["archive"] == counts["timeline"] == counts["distinct_timeline"] == len(events)
    assert counts["parked"] == 0
    assert counts["tracked"] == len(await log_records(settings, opened_only=False))

    log = await log_events(settings)
    person_of = {(e.source.agency, e.event_id): e.identifier_key for _, _, e in log}
    applied: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for row in await pool.fetch("SELECT source_agency, event_id::text, person_key,"
                                " kafka_partition, kafka_offset FROM event_archive ORDER BY seq"):
        simulated = person_of[(row["source_agency"], row["event_id"])]
        applied[simulated].append((row["person_key"], row["kafka_partition"],
                                   row["kafka_offset"]))
    assert len(applied) == len({e.identifier_key for e in events})
    for simulated, steps in applied.items():
        # one person id and one partition per person, whichever admission worker met them
        assert len({person for person, _, _ in steps}) == 1, simulated
        assert len({partition for _, partition, _ in steps}) == 1, simulated
        offsets = [offset for _, _, offset in steps]
        assert offsets == sorted(offsets), f"{simulated}: applied out of log order"
    assert len({steps[0][0] for steps in applied.values()}) == len(applied)

    expected = reference_alerts(log, datetime.now(UTC))
    assert len(expected) > 20
    await wait_for(pool, "SELECT count(*) FROM alert_history", len(expected), timeout=60)
    rows = await pool.fetch("SELECT alert_event_id::text, action, at FROM alert_history")
    assert {(r[0], r[1], r[2]) for r in rows} == expected
    assert len(rows) == len(expected)


async def test_three_workers_share_the_log_in_order_and_once(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    events = await _published(migrated, pool, seed=21, people=400)
    workers = [start_worker(migrated, tmp_path, **GROUP) for _ in range(3)]
    try:
        await wait_for(pool, "SELECT count(*) FROM event_archive", len(events), timeout=120)
        await _assert_exactly_once_in_order(migrated, pool, events)
        shares = [await _applied_by(w, migrated.processor_group) for w in workers]
        assert all(share > 0 for share in shares), f"a worker applied nothing: {shares}"
        print(f"\n[figures] three workers, {PARTITIONS} partitions: {len(events)} events, "
              f"applied {[int(s) for s in shares]} each, 0 lost, 0 doubled")
    finally:
        codes = [w.stop() for w in workers]
    assert all(c in (0, -signal.SIGTERM) for c in codes), workers[0].log()[-2000:]


async def test_a_killed_worker_partitions_are_taken_over_with_nothing_lost_or_doubled(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    events = await _published(migrated, pool, seed=22, people=600)
    survivor = start_worker(migrated, tmp_path, **GROUP)
    victim = start_worker(migrated, tmp_path, **GROUP)
    try:
        # both at work (the group has shared the partitions), then one dies mid-stream
        async def both_applying() -> bool:
            return (await _applied_by(victim, migrated.processor_group) > 0
                    and await _applied_by(survivor, migrated.processor_group) > 0)
        await wait_until(both_applying, timeout=90)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        killed_at, last_seq = await pool.fetchrow(
            "SELECT count(*), coalesce(max(seq), 0) FROM event_archive")
        assert killed_at < len(events), "the kill must land mid-stream"

        await wait_for(pool, "SELECT count(*) FROM event_archive", len(events), timeout=120)
        after = await pool.fetchval(
            "SELECT count(DISTINCT kafka_partition) FROM event_archive WHERE seq > $1", last_seq)
        await _assert_exactly_once_in_order(migrated, pool, events)
        print(f"\n[figures] two workers, one SIGKILLed at {killed_at}/{len(events)} events: "
              f"the survivor applied the rest over {after} partitions, 0 lost, 0 doubled")
    finally:
        code = survivor.stop()
        victim.stop()
    assert code in (0, -signal.SIGTERM), survivor.log()[-2000:]
