"""Rules end to end on the real broker and PostgreSQL: a deadline alert fires with no further
event on the stream (test clock), an immediate alert, and a late follow-up that resolves the
alert automatically, all the way to the alert read model through the alerts topic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from projections.queries import alerts as alerts_sql
from services.alerts.codec import decode_alert_event
from services.alerts.read_model import project_alert_events
from services.common.kafka import stop_consumer
from services.common.settings import Settings
from services.processor.bootstrap import Processor, build_processor
from services.processor.clock import ManualClock
from tests import factories as f
from tests.integration.processor.conftest import publish, read_topic, register_sources, wait_for

H = timedelta(hours=1)


@pytest.fixture
async def clocked(migrated: Settings) -> AsyncIterator[tuple[Processor, ManualClock]]:
    """A processor whose deadline timer runs on a test clock, and an alert projector."""
    clock = ManualClock(f.T0)
    # no publishing grace: these tests hold the timer to the exact deadline
    exact = migrated.model_copy(update={"deadline_grace_seconds": 0.0})
    processor = await build_processor(exact, migrate=False, clock=clock)
    await register_sources(processor.pool, [(s.agency, s.service_kind)
                                            for s in f.SOURCES.values()])
    intake = asyncio.create_task(processor.run())
    projector = asyncio.create_task(_project(processor))
    try:
        yield processor, clock
    finally:
        processor.stopping.set()
        projector.cancel()
        await asyncio.wait_for(intake, 30)
        await processor.close()


async def _project(processor: Processor) -> None:
    """What the worker's Faust agent does, in the test's event loop."""
    consumer = AIOKafkaConsumer(
        processor.settings.topics.alerts, bootstrap_servers=processor.settings.kafka_bootstrap,
        group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                async with processor.pool.acquire() as conn:
                    await project_alert_events(conn, [decode_alert_event(r.value) for r in records])
    finally:
        await stop_consumer(consumer)


async def _caught_up(processor: Processor) -> None:
    for _ in range(100):
        if processor.intake.caught_up_partitions():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the intake never reported a caught-up partition")


async def test_deadline_alert_fires_with_no_further_events(
        clocked: tuple[Processor, ManualClock]) -> None:
    processor, clock = clocked
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    await publish(processor.settings, [discharge])
    await wait_for(processor.pool, "SELECT count(*) FROM expectation WHERE status = 'open'", 2)
    await _caught_up(processor)

    clock.advance(71 * H + 59 * timedelta(minutes=1))  # 71h59m: the follow-up is not late yet
    await processor.deadlines.tick()
    assert await processor.pool.fetchval(
        "SELECT count(*) FROM expectation WHERE rule_id = 'mh-72h-follow-up' AND status = 'open'"
    ) == 1

    clock.advance(2 * timedelta(minutes=1))           # 72h01m, and still no event at all
    assert await processor.deadlines.tick() >= 1
    await wait_for(processor.pool,
                   "SELECT count(*) FROM alert WHERE rule_id = 'mh-72h-follow-up'", 1)
    alert = await processor.pool.fetchrow(
        "SELECT * FROM alert WHERE rule_id = 'mh-72h-follow-up'")
    assert alert["status"] == "open"
    assert alert["raised_at"] == f.T0 + 72 * H       # the deadline, not when the timer ran
    assert alert["due_at"] == f.T0 + 72 * H
    assert alert["severity"] == "critical"
    assert alert["duty_team"] == "mental-health:E08000035"
    assert str(alert["trigger_event_id"]) == discharge.event_id
    assert "72 hours" in alert["title"] and alert["source_reference"]
    assert f.NHS not in alert["explanation"] + alert["expected"] + alert["title"]

    # A second tick raises nothing twice.
    assert await processor.deadlines.tick() == 0

    # The follow-up arrives late: the alert resolves itself, saying why.
    follow_up = f.contact("follow_up", at=f.T0 + 80 * H, source="MENTAL_HEALTH")
    await publish(processor.settings, [follow_up])
    await wait_for(processor.pool,
                   "SELECT count(*) FROM alert WHERE rule_id = 'mh-72h-follow-up'"
                   " AND status = 'resolved'", 1)
    resolved = await processor.pool.fetchrow(
        "SELECT * FROM alert WHERE rule_id = 'mh-72h-follow-up'")
    assert str(resolved["resolving_event_id"]) == follow_up.event_id
    assert "late" in resolved["resolution"]
    history = await processor.pool.fetch(alerts_sql.ALERT_HISTORY, resolved["alert_id"])
    assert [h["action"] for h in history] == ["raised", "resolved"]


async def test_a_follow_up_arriving_before_its_discharge_resolves_after_the_raise(
        clocked: tuple[Processor, ManualClock]) -> None:
    """Out of order across agencies: the late follow-up (T0+100h) is on the log before the
    ward's discharge (occurred T0, recorded T0+1h). Raised at the deadline, resolved when the
    follow-up was recorded: never a resolution stamped before its raise."""
    processor, _ = clocked
    follow_up = f.contact("follow_up", at=f.T0 + 100 * H, source="MENTAL_HEALTH")
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH",
                             delay=H)
    await publish(processor.settings, [follow_up, discharge])
    query = ("SELECT * FROM alert WHERE rule_id = 'mh-72h-follow-up' AND status = 'resolved'")
    await wait_for(processor.pool, f"SELECT count(*) FROM ({query}) AS a", 1)
    alert = await processor.pool.fetchrow(query)
    assert alert["raised_at"] == f.T0 + 72 * H
    assert alert["resolved_at"] == f.T0 + 100 * H >= alert["raised_at"]
    history = await processor.pool.fetch(alerts_sql.ALERT_HISTORY, alert["alert_id"])
    assert [(h["action"], h["at"]) for h in history] == [
        ("raised", f.T0 + 72 * H), ("resolved", f.T0 + 100 * H)]
    assert history[1]["event_id"] == follow_up.event_id


async def test_a_further_decline_joins_the_open_stuck_alert(
        clocked: tuple[Processor, ManualClock]) -> None:
    """Two services decline citing each other; a new referral is declined again. One alert,
    its history and evidence count growing; the detail names no one."""
    processor, _ = clocked
    D = 24 * H

    def declined(by: str, cites: str, referral_id: str, day: int):  # type: ignore[no-untyped-def]
        return f.referral("declined", referral_id, to=by, decline_reason="CITES_OTHER_NEED_FIRST",
                          cites_service_kind=cites, source=by, at=f.T0 + day * D)

    declines = [declined("MENTAL_HEALTH", "SUBSTANCE_USE", "r-1", 0),
                declined("SUBSTANCE_USE", "MENTAL_HEALTH", "r-2", 10),
                declined("SUBSTANCE_USE", "MENTAL_HEALTH", "r-3", 40)]
    await publish(processor.settings, declines)
    await wait_for(processor.pool, "SELECT count(*) FROM alert_history WHERE action = "
                   "'evidence'", 1)
    [alert] = await processor.pool.fetch(
        "SELECT * FROM alert WHERE rule_id = 'stuck-between-services'")
    assert (alert["status"], alert["evidence_count"]) == ("open", 1)
    # The agencies' topics interleave in any order; whichever it was, the alert is keyed on
    # the first pair and stamped no earlier than the events it stands on were recorded.
    assert str(alert["trigger_event_id"]) == declines[1].event_id
    assert alert["raised_at"] >= f.T0 + 10 * D
    assert alert["last_evidence_at"] >= alert["raised_at"]
    history = await processor.pool.fetch(alerts_sql.ALERT_HISTORY, alert["alert_id"])
    assert [h["action"] for h in history] == ["raised", "evidence"]
    joined = history[1]
    assert (joined["event_id"], joined["event_agency"]) == (declines[2].event_id,
                                                            "forward-leeds")
    assert "referral.declined" in joined["detail"] and f.NHS not in joined["detail"]


async def test_release_to_no_fixed_abode_alerts_at_once(
        clocked: tuple[Processor, ManualClock]) -> None:
    processor, _ = clocked
    release = f.transition("occurred", "PRISON_RELEASE", reason="RELEASED",
                           accommodation_on_leaving="NO_FIXED_ABODE", delay=timedelta(minutes=5))
    temporary_absence = f.transition("occurred", "PRISON_RELEASE", "t-2",
                                     reason="TEMPORARY_ABSENCE_RELEASE",
                                     accommodation_on_leaving="NO_FIXED_ABODE")
    await publish(processor.settings, [temporary_absence, release])
    await wait_for(processor.pool, "SELECT count(*) FROM alert", 1)
    await wait_for(processor.pool, "SELECT count(*) FROM event_archive", 2)
    rows = await processor.pool.fetch("SELECT * FROM alert")
    assert len(rows) == 1                               # a temporary absence is not a release
    alert = rows[0]
    assert alert["rule_id"] == "prison-release-no-settled-accommodation"
    assert str(alert["trigger_event_id"]) == release.event_id
    assert alert["raised_at"] == release.recorded_at   # stream time, not processing time
    assert alert["due_at"] is None
    # On the alerts topic, in the CloudEvents Kafka binding (binary mode), no personal data.
    [record] = await read_topic(processor.settings.kafka_bootstrap,
                                processor.settings.topics.alerts, 1)
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == decode_alert_event(record.value).alert_event_id
    assert (headers["ce_source"], headers["ce_type"]) == ("/joinedup/alerts", "alert.raised")
    assert headers["ce_time"].endswith("Z")
    assert headers["content-type"].startswith("application/avro; schema=joinedup.AlertEvent")


async def test_a_follow_up_in_time_means_no_alert_ever(
        clocked: tuple[Processor, ManualClock]) -> None:
    processor, clock = clocked
    await publish(processor.settings, [
        f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH"),
        f.contact("care_plan_shared", "c-2", at=f.T0 + 2 * H, source="MENTAL_HEALTH"),
        f.contact("follow_up", at=f.T0 + 71 * H, source="MENTAL_HEALTH"),
    ])
    await wait_for(processor.pool, "SELECT count(*) FROM event_archive", 3)
    await _caught_up(processor)
    clock.advance(30 * 24 * H)
    assert await processor.deadlines.tick() == 0
    assert await processor.pool.fetchval("SELECT count(*) FROM alert_outbox") == 0
    statuses = await processor.pool.fetch("SELECT rule_id, status FROM expectation ORDER BY rule_id")
    assert [(r["rule_id"], r["status"]) for r in statuses] == [
        ("mh-72h-follow-up", "fulfilled"), ("mh-care-plan-24h", "fulfilled")]


async def test_the_timer_fires_nothing_where_the_rules_are_still_catching_up(
        clocked: tuple[Processor, ManualClock]) -> None:
    """Rule state still being caught up from the archive is not the truth yet (a later
    archived event may fulfil an expectation it holds open): the deadline timer leaves the
    partitions where the rules read model is not applied live, and fires once it is."""
    processor, clock = clocked
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    await publish(processor.settings, [discharge])
    await wait_for(processor.pool, "SELECT count(*) FROM expectation WHERE status = 'open'", 2)
    await _caught_up(processor)
    clock.advance(73 * H)
    pool, topic = processor.pool, processor.settings.topics.person_events
    await pool.execute("UPDATE read_model SET status = 'catching-up' WHERE name = 'rules'")
    await pool.execute(
        "INSERT INTO read_model_position (read_model, topic, partition, next_offset) "
        "SELECT 'rules', $1, p, NULL FROM generate_series(0, $2 - 1) AS p "
        "ON CONFLICT (read_model, topic, partition) DO UPDATE SET next_offset = NULL",
        topic, processor.settings.topic_partitions)
    assert await processor.deadlines.tick() == 0
    assert await pool.fetchval("SELECT count(*) FROM alert") == 0

    # It has joined the live pipeline on the discharge's partition: that one fires.
    partition = await pool.fetchval("SELECT kafka_partition FROM event_archive")
    await pool.execute(
        "UPDATE read_model_position SET next_offset = c.next_offset FROM consumer_position c "
        "WHERE read_model = 'rules' AND read_model_position.partition = $1 "
        "AND c.consumer = $2 AND c.topic = read_model_position.topic "
        "AND c.partition = read_model_position.partition",
        partition, processor.settings.processor_group)
    assert await processor.deadlines.tick() >= 1
    assert await pool.fetchval(
        "SELECT count(*) FROM alert WHERE rule_id = 'mh-72h-follow-up'") == 1
