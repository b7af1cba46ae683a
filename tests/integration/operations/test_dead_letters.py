"""Dead letters for operations staff, against the real worker, broker and database: a refused
event is parked with its original headers and timestamp and Kafka Connect's error headers;
re-driven before its cause is fixed it is parked again (linked to the first); re-driven after
the fix it reaches the timeline once; purge marks it dealt with; every action is audited."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

import asyncpg
import pytest

from services.alerts.projector import AlertProjector
from services.common.agencies import register_agency
from services.common.dead_letters import DeadLetterTopic
from services.common.event_log import EventLog
from services.common.events import AgencyEvent, Source
from services.common.health import Health
from services.common.kafka import ensure_topics, make_producer
from services.common.records import Message
from services.common.settings import Settings
from services.operations.dead_letters import DeadLetters, Filter
from services.processor.bootstrap import Processor
from services.reads.domain.audit import Caller
from services.reads.lookup import ReadRefused
from tests import factories as f
from tests.integration.processor.conftest import (  # noqa: F401 - running is a fixture
    publish_raw,
    read_topic,
    running,
    wait_for,
)

LATE = Source("late-agency", "HOUSING", "crm", "options", "E08000035")
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OPERATOR = Caller.for_operator("ops.on.call")


async def publish_traced(settings: Settings, events: Sequence[AgencyEvent]) -> None:
    """As a direct publisher does, with a trace context header to see kept."""
    await ensure_topics(settings, agencies={e.source.agency for e in events})
    producer = make_producer(settings)
    await producer.start()
    try:
        log = EventLog(producer, settings.topics, settings.subject_keys())
        for event in events:
            await (await log.send(event, TRACE))
    finally:
        await producer.stop()


def on_timeline(event: AgencyEvent) -> str:
    return f"SELECT count(*) FROM timeline_entry WHERE event_id = '{event.event_id}'"


async def until_admitted(settings: Settings, pool: asyncpg.Pool) -> None:
    """Admission sees the agency registered: it reloads its list of agencies at most once a
    second, so probes (one at a time) until one reaches the timeline (the others are parked)."""
    for _ in range(30):
        probe = dataclasses.replace(f.contact("missed"), source=LATE)
        parked = await pool.fetchval("SELECT count(*) FROM dead_letter")
        await publish_traced(settings, [probe])
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            if await pool.fetchval(on_timeline(probe)):
                return
            if await pool.fetchval("SELECT count(*) FROM dead_letter") > parked:
                break
            await asyncio.sleep(0.1)
    raise AssertionError("the agency's registration never reached admission")


async def audit_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT action, operator, person_id, outcome, detail "
                            "FROM access_audit WHERE action LIKE 'dead_letter.%' ORDER BY seq")


async def test_redrive_after_fixing_the_cause_reaches_the_timeline_once(
        running: Processor) -> None:  # noqa: F811
    settings, pool = running.settings, running.pool
    letters = DeadLetters(pool, settings)
    event = dataclasses.replace(f.contact("attended", contact_id="c-late"), source=LATE)
    await publish_traced(settings, [event])
    await wait_for(pool, "SELECT count(*) FROM dead_letter", 1)

    # The copy keeps the original headers and timestamp and adds Connect's error headers.
    [copy] = await read_topic(settings.kafka_bootstrap or "", settings.topics.dead_letter, 1)
    [original] = await read_topic(settings.kafka_bootstrap or "",
                                  settings.topics.agency(LATE.agency), 1)
    headers = dict(copy.headers)
    assert copy.timestamp == original.timestamp and copy.value == original.value
    assert headers["traceparent"] == TRACE.encode()
    assert headers["ce_type"] == b"contact.attended"
    assert headers["__connect.errors.topic"] == settings.topics.agency(LATE.agency).encode()
    assert headers["__connect.errors.partition"] == str(original.partition).encode()
    assert headers["__connect.errors.offset"] == str(original.offset).encode()
    assert headers["__connect.errors.connector.name"] == b"admission"
    assert headers["__connect.errors.stage"] == b"TASK_PUT"
    assert headers["__connect.errors.class.name"] == b"services.admission.handler.Admission"
    assert headers["__connect.errors.exception.class.name"] == (
        b"services.common.dead_letters.Refused")
    refused = b"refused: the agency is not registered to publish (or is disabled)"
    assert headers["__connect.errors.exception.message"] == refused
    assert headers["joinedup-reason"] == refused

    [first] = await letters.list(OPERATOR, Filter(source=LATE.agency))
    assert (first["stage"], first["source_agency"], first["status"]) == (
        "admission", LATE.agency, "open")
    shown = await letters.show(OPERATOR, first["id"])
    assert shown.problem is None and shown.content is not None
    assert shown.content.schema == "agency_event v3"
    assert shown.content.decoded["event_id"] == event.event_id
    assert ("traceparent", TRACE) in shown.headers
    assert all(name.startswith("__connect.errors.") or name.startswith("joinedup-")
               for name, _ in shown.error_headers)

    # Re-driven before the cause is fixed: parked again, a new dead letter linked to the first.
    await letters.redrive(OPERATOR, first["id"], "try again")
    await wait_for(pool, "SELECT count(*) FROM dead_letter", 2)
    [second] = await letters.list(OPERATOR, Filter(source=LATE.agency))
    assert second["redrive_of"] == first["id"]
    [again] = await letters.list(OPERATOR, Filter(source=LATE.agency, status="redriven"))
    assert (again["id"], again["parked_again_as"], again["redriven_by"]) == (
        first["id"], second["id"], "ops.on.call")
    with pytest.raises(ReadRefused, match="was re-driven"):
        await letters.redrive(OPERATOR, first["id"], "once more")

    # The cause fixed (the agency registered, and seen to be: its next event is admitted),
    # then re-driven: admitted, on the timeline.
    await register_agency(pool, LATE.agency, "Late agency", LATE.service_kind)
    await until_admitted(settings, pool)
    redriven = await letters.redrive(OPERATOR, second["id"], "agency registered")
    await wait_for(pool, on_timeline(event), 1)
    # A second copy (as a re-drive whose record was lost would send) changes nothing: the
    # person's next event, behind it on the same partition, arrives and the copy did not.
    await publish_traced(settings, [event])
    last = dataclasses.replace(f.contact("attended", contact_id="c-late-3"), source=LATE)
    await publish_traced(settings, [last])
    await wait_for(pool, on_timeline(last), 1)
    assert await pool.fetchval(on_timeline(event)) == 1
    assert await pool.fetchval("SELECT count(*) FROM dead_letter WHERE parked_at >= $1",
                               redriven["redriven_at"]) == 0

    actions = [(r["action"], r["operator"], r["outcome"]) for r in await audit_rows(pool)]
    assert ("dead_letter.show", "ops.on.call", "ok") in actions
    assert ("dead_letter.redrive", "ops.on.call", "refused") in actions
    assert actions.count(("dead_letter.redrive", "ops.on.call", "ok")) == 2
    assert actions.count(("dead_letter.list", "ops.on.call", "ok")) == 3


async def test_purge_is_audited_and_keeps_the_record(
        running: Processor) -> None:  # noqa: F811
    settings, pool = running.settings, running.pool
    letters = DeadLetters(pool, settings)
    await publish_raw(settings, [(b"k", b"\x00not avro at all")])
    await wait_for(pool, "SELECT count(*) FROM dead_letter", 1)
    [letter] = await letters.list(OPERATOR, Filter(reason="undecodable"))
    assert letter["exception_class"] == "services.common.serde.avro.DecodeError"

    shown = await letters.show(OPERATOR, letter["id"])
    assert shown.content is not None and shown.content.form == "raw"
    assert shown.content.hex == b"\x00not avro at all".hex()
    assert shown.content.note is not None and "neither Avro" in shown.content.note
    assert dict(shown.error_headers)["__connect.errors.stage"] == "VALUE_CONVERTER"

    purged = await letters.purge(OPERATOR, letter["id"], "bad test bytes; publisher told")
    assert (purged["status"], purged["purged_by"], purged["purged_reason"]) == (
        "purged", "ops.on.call", "bad test bytes; publisher told")
    assert await letters.list(OPERATOR, Filter()) == []
    assert [d["id"] for d in await letters.list(OPERATOR, Filter(status="purged"))] == [
        letter["id"]]
    with pytest.raises(ReadRefused, match="was purged"):
        await letters.redrive(OPERATOR, letter["id"], "no")
    with pytest.raises(ReadRefused, match="no dead letter"):
        await letters.purge(OPERATOR, letter["id"] + 1000, "no such")

    rows = await audit_rows(pool)
    [purge] = [r for r in rows if r["action"] == "dead_letter.purge" and r["outcome"] == "ok"]
    assert purge["operator"] == "ops.on.call" and purge["person_id"] is None
    assert json.loads(purge["detail"]) == {
        "channel": "cli", "dead_letter": letter["id"],
        "reason": "bad test bytes; publisher told"}
    assert ("dead_letter.purge", "not_found") in [(r["action"], r["outcome"]) for r in rows]
    # Nothing is deleted from the topic: the copy is still there.
    assert len(await read_topic(settings.kafka_bootstrap or "",
                                settings.topics.dead_letter, 1)) == 1

    # The same at the command line: JSON for scripts, one line and an exit code on refusal.
    code, out, _ = await cli(settings, "dead-letters", "list", "--status", "purged",
                             "--by", "ops.cli", "--json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [letter["id"]]
    code, out, _ = await cli(settings, "dead-letters", "show", str(letter["id"]),
                             "--by", "ops.cli")
    assert code == 0 and "VALUE_CONVERTER" in out and b"\x00not avro at all".hex() in out
    code, out, err = await cli(settings, "dead-letters", "purge", "999999", "--by", "ops.cli",
                               "--reason", "none such")
    assert (code, err) == (1, "joinedup dead-letters purge: no dead letter 999999\n")
    code, out, err = await cli(settings, "dead-letters", "redrive", str(letter["id"]),
                               "--by", "ops.cli", "--reason", "again")
    assert code == 2 and err.startswith("joinedup dead-letters redrive: dead letter ")
    assert len(err.strip().splitlines()) == 1
    assert {r["operator"] for r in await audit_rows(pool)} == {"ops.on.call", "ops.cli"}


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": settings.database_url or "",
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
            "JOINEDUP_DB_SCHEMA": settings.db_schema,
            "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix, "JOINEDUP_LOG_LEVEL": "WARNING",
            "COLUMNS": "200"}


async def cli(settings: Settings, *args: str) -> tuple[int | None, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.operations.cli", *args, env=_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_the_alert_projector_records_what_it_parks(migrated: Settings,
                                                         pool: asyncpg.Pool) -> None:
    """An alert event it cannot read is parked and recorded like the other stages' (a
    re-drive sends it back to the alerts topic, where the alert history knows a copy)."""
    producer = make_producer(migrated)
    await producer.start()
    try:
        projector = AlertProjector(pool, DeadLetterTopic(producer, migrated.topics.dead_letter),
                                   Health())
        await projector.project([Message(migrated.topics.alerts, 1, 7, b"alert-key", b"junk",
                                         1_700_000_000_000)])
    finally:
        await producer.stop()
    [letter] = await DeadLetters(pool, migrated).list(OPERATOR, Filter(stage="alert-projector"))
    assert (letter["topic"], letter["partition"], letter["kafka_offset"]) == (
        migrated.topics.alerts, 1, 7)
    assert letter["reason"].startswith("undecodable alert event: not Avro")
    assert letter["exception_class"] == "services.common.serde.avro.DecodeError"
    assert letter["source_agency"] is None and letter["copy_offset"] is not None
    assert letter["original_timestamp"].timestamp() == 1_700_000_000
