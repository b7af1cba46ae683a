"""The real worker process (`joinedup worker`), killed with SIGKILL mid-batch again and again
and restarted each time: nothing lost, nothing doubled: read models, positions and alerts."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.alerts.codec import encode_alert_event
from services.alerts.events import AlertEvent, alert_event_id_for, alert_id_for
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.simulation import simulate
from tests.faults.conftest import log_events, log_records, reference_alerts, start_worker
from tests.integration.processor.conftest import publish, read_topic, register_sources, wait_for

pytestmark = pytest.mark.faults
KILLS = 5


async def _publish_foreign_alert(settings: Settings) -> str:
    alert_id = alert_id_for("manual-check", "another-service", str(uuid.uuid4()))
    at = datetime(2026, 8, 1, tzinfo=UTC)
    event = AlertEvent(
        alert_event_id=alert_event_id_for(alert_id, "raised"), alert_id=alert_id,
        action="raised", at=at, person_key=str(uuid.uuid4()), rule_id="manual-check",
        rule_version="1", severity="low", duty_team="test-team", title="A manual check",
        explanation="Raised by another service", source_reference="test",
        trigger_event_id=str(uuid.uuid4()), expected="nothing", window_start=at)
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.alerts, b"not an alert event", key=b"x")
        await producer.send_and_wait(settings.topics.alerts, encode_alert_event(event),
                                     key=event.person_key.encode())
    finally:
        await producer.stop()
    return alert_id


async def test_repeated_sigkill_mid_batch_loses_and_doubles_nothing(
        migrated: Settings, pool: asyncpg.Pool, tmp_path: Path) -> None:
    events = simulate(seed=5, people=500, months=6, start=datetime(2026, 1, 5, tzinfo=UTC))
    assert len(events) >= 4_000
    await register_sources(pool, {(e.source.agency, e.source.service_kind) for e in events})
    await publish(migrated, events)
    batch = {"JOINEDUP_BATCH_MAX_EVENTS": "100"}

    worker = start_worker(migrated, tmp_path, **batch)
    try:
        for kill in range(1, KILLS + 1):
            await wait_for(pool, "SELECT count(*) FROM event_archive",
                           kill * len(events) // (KILLS + 2), timeout=90)
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(10)
            killed_at = await pool.fetchval("SELECT count(*) FROM event_archive")
            assert killed_at < len(events), "the kill must land mid-stream"
            # Effects and positions commit together: what is archived is exactly the events
            # below the tracked positions, at every kill (admission forwards at least once,
            # so the log may hold a copy, which the archive recognises), but for those the
            # processor put back under another person id (keyed by a resolution the kill
            # rolled back): each of those has its re-keyed copy on the log.
            tracked = {r["partition"]: r["next_offset"] for r in await pool.fetch(
                "SELECT partition, next_offset FROM consumer_position WHERE consumer = $1",
                migrated.processor_group)}
            records = await log_records(migrated)
            below = {(e.source.agency, e.event_id) for p, offset, e, _ in records
                     if offset < tracked.get(p, 0)}
            archived = {(r["source_agency"], str(r["event_id"])) for r in await pool.fetch(
                "SELECT source_agency, event_id FROM event_archive")}
            rekeyed = {(e.source.agency, e.event_id) for _, _, e, again in records if again}
            assert len(archived) == killed_at and archived <= below
            assert below - archived <= rekeyed
            worker = start_worker(migrated, tmp_path, **batch)

        await wait_for(pool, "SELECT count(*) FROM event_archive", len(events), timeout=120)
        await asyncio.sleep(1.0)  # anything doubled would show up now
        counts = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM event_archive) AS archive,"
            " (SELECT count(*) FROM timeline_entry) AS timeline,"
            " (SELECT count(DISTINCT event_id) FROM timeline_entry) AS distinct_timeline,"
            " (SELECT count(*) FROM referral_history) AS history,"
            " (SELECT coalesce(sum(next_offset), 0) FROM consumer_position"
            "  WHERE consumer = $1) AS tracked", migrated.processor_group)
        referral_events = sum(1 for e in events if e.family == "referral")
        assert counts["archive"] == counts["timeline"] == counts["distinct_timeline"] == len(events)
        assert counts["history"] == referral_events
        log = await log_events(migrated)
        # every record on the log applied, copies too, and those sealed by a decision the
        # kill rolled back skipped (their events were forwarded again)
        assert counts["tracked"] == len(await log_records(migrated, opened_only=False))

        # Alerts too: exactly the alert events the rules imply for this log, each once,
        # projected by the worker's Faust agent from the alerts topic.
        expected_alerts = reference_alerts(log, datetime.now(UTC))
        assert len(expected_alerts) > 20
        await wait_for(pool, "SELECT count(*) FROM alert_history", len(expected_alerts),
                       timeout=60)
        rows = await pool.fetch("SELECT alert_event_id::text, action, at FROM alert_history")
        assert {(r[0], r[1], r[2]) for r in rows} == expected_alerts
        print(f"\n[figures] worker SIGKILL x{KILLS} mid-batch: {len(events)} published, "
              f"{counts['archive']} archived ({len(log) - len(events)} forwarded copies "
              f"recognised), 0 lost, 0 doubled; {len(expected_alerts)} alert events equal to "
              "the pure engine's")
        open_alerts = await pool.fetchval("SELECT count(*) FROM alert WHERE status = 'open'")
        raised = sum(1 for _, action, _ in expected_alerts if action == "raised")
        resolved = sum(1 for _, action, _ in expected_alerts if action == "resolved")
        assert open_alerts == raised - resolved

        # The worker's Faust agent projects alert events that other services put on the
        # alerts topic, and parks an unreadable one on the dead-letter topic.
        foreign = await _publish_foreign_alert(migrated)
        await wait_for(pool, f"SELECT count(*) FROM alert WHERE alert_id = '{foreign}'", 1)
        parked = await read_topic(migrated.kafka_bootstrap or "", migrated.topics.dead_letter, 1)
        assert dict(parked[0].headers)["joinedup-reason"].decode().startswith(
            "undecodable alert event")
    finally:
        code = worker.stop()
    assert code in (0, -signal.SIGTERM), worker.log()[-2000:]
