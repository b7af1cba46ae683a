"""Claims on event ids: in progress elsewhere (wait, then 409 in_progress), and stale takeover.

A claim held by "another request" is a pending receipt written straight into PostgreSQL, with
the content hash the gateway computes for the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.common.event_log import EventLog
from services.common.events import AgencyEvent
from services.common.kafka import make_producer
from services.common.serde.agency_json import event_to_json
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.ingest.domain.parsing import content_hash, parse_event
from tests.factories import referral
from tests.integration.ingest.conftest import AGENCY, Gateway, copies, gateway_thread, topic_events

pytestmark = pytest.mark.integration

CLAIM_WAIT = 1.0  # long enough for a loaded machine, short enough to measure a wait


@pytest.fixture
async def gateway(migrated: Settings) -> AsyncIterator[Gateway]:
    settings = migrated.model_copy(update={"api_claim_wait_seconds": CLAIM_WAIT})
    token = await create_agency(settings, AGENCY, "HMP Leeds", "PRISON")
    with gateway_thread(settings) as url:
        yield Gateway(url, settings, token)


@pytest.fixture
async def db(gateway: Gateway) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(gateway.settings.database_url, server_settings={
        "search_path": gateway.settings.db_schema})
    try:
        yield conn
    finally:
        await conn.close()


def _hash(event: AgencyEvent) -> str:
    """What the gateway computes for the event (it parses the JSON form first)."""
    parsed, problems = parse_event(event_to_json(event), datetime.now(UTC), timedelta(minutes=5))
    assert parsed is not None, problems
    return content_hash(parsed)


async def _claim(db: asyncpg.Connection, event: AgencyEvent, age: timedelta,
                 content: str | None = None) -> None:
    await db.execute(
        "INSERT INTO ingest_receipt (event_id, agency_id, content_hash, state, claimed_at) "
        "VALUES ($1, $2, $3, 'pending', now() - $4::interval)",
        event.event_id, AGENCY, content or _hash(event), age)


async def _state(db: asyncpg.Connection, event: AgencyEvent) -> str | None:
    return await db.fetchval("SELECT state FROM ingest_receipt WHERE event_id = $1",
                             event.event_id)


async def test_a_claim_in_progress_is_answered_409_in_progress_with_retry_after(
        gateway: Gateway, db: asyncpg.Connection) -> None:
    event = referral("made")
    await _claim(db, event, timedelta(seconds=1))  # fresh: its request is still producing
    async with gateway.client() as http:
        started = asyncio.get_running_loop().time()
        response = await http.post("/v1/events", json=event_to_json(event))
        waited = asyncio.get_running_loop().time() - started
        batch = await http.post("/v1/events:batch", json={"events": [event_to_json(event)]})
    assert response.status_code == 409
    assert response.headers["retry-after"].isdigit()
    assert response.json()["problems"][0]["code"] == "in_progress"
    assert waited >= CLAIM_WAIT * 0.8  # it looked again for a while before answering
    assert batch.status_code == 503 and batch.headers["retry-after"].isdigit()
    assert batch.json()["items"][0]["status"] == "in_progress"
    assert batch.json()["all_written"] is False
    assert await _state(db, event) == "pending"  # the other request's claim is untouched
    assert copies(await topic_events(gateway.settings, idle_ms=500), event.event_id) == 0


async def test_a_post_waits_for_a_claim_that_settles_and_answers_its_outcome(
        gateway: Gateway, db: asyncpg.Connection) -> None:
    accepted, released = referral("made"), referral("declined")
    for event in (accepted, released):
        await _claim(db, event, timedelta(seconds=1))
    # Started before the posts: starting a producer can take longer than the posts wait
    # (CLAIM_WAIT), and one CI run failed when it did.
    producer = make_producer(gateway.settings)
    await producer.start()
    try:
        async with gateway.client() as http:
            posts = [asyncio.create_task(http.post("/v1/events", json=event_to_json(e)))
                     for e in (accepted, released)]
            await asyncio.sleep(CLAIM_WAIT / 4)
            # The other requests finish: one wrote its event (so its record is on the log,
            # where the read-back finds it), one was not written.
            written = await _write(producer, gateway.settings, accepted)
            await db.execute(
                "UPDATE ingest_receipt SET state = 'accepted', kafka_topic = $2, "
                "kafka_partition = $3, kafka_offset = $4, accepted_at = now() "
                "WHERE event_id = $1",
                accepted.event_id, written.topic, written.partition, written.offset)
            await db.execute("DELETE FROM ingest_receipt WHERE event_id = $1",
                             released.event_id)
            first, second = await asyncio.gather(*posts)
    finally:
        await producer.stop()
    assert first.status_code == 200, first.text
    assert (first.json()["partition"], first.json()["offset"]) == (written.partition,
                                                                   written.offset)
    assert second.status_code == 202, second.text  # the id was given back: this post wrote it
    assert await _state(db, released) == "accepted"
    found = await topic_events(gateway.settings)
    assert copies(found, accepted.event_id) == 1 and copies(found, released.event_id) == 1


async def _write(producer: AIOKafkaProducer, settings: Settings, event: AgencyEvent) -> Any:
    """The event on its agency's topic, as another gateway request would have written it."""
    return await (await EventLog(producer, settings.topics, settings.subject_keys()).send(event))


async def test_a_stale_claim_is_taken_over_and_written_once(
        gateway: Gateway, db: asyncpg.Connection) -> None:
    event = referral("made")
    await _claim(db, event, timedelta(hours=1))  # its request died long ago
    body = event_to_json(event)
    async with gateway.client() as http:
        taken = await http.post("/v1/events", json=body)
        again = await http.post("/v1/events", json=body)
    assert taken.status_code == 202, taken.text
    assert again.status_code == 200 and again.json()["offset"] == taken.json()["offset"]
    row = await db.fetchrow("SELECT state, kafka_offset, claimed_at FROM ingest_receipt "
                            "WHERE event_id = $1", event.event_id)
    assert row["state"] == "accepted" and row["kafka_offset"] == taken.json()["offset"]
    assert row["claimed_at"] > datetime.now(UTC) - timedelta(minutes=1)  # claimed afresh
    assert copies(await topic_events(gateway.settings), event.event_id) == 1


async def test_a_claim_with_different_content_is_a_conflict_stale_or_not(
        gateway: Gateway, db: asyncpg.Connection) -> None:
    fresh, stale = referral("made"), referral("made")
    await _claim(db, fresh, timedelta(seconds=1), content="0" * 64)
    await _claim(db, stale, timedelta(hours=1), content="0" * 64)
    async with gateway.client() as http:
        answers = [await http.post("/v1/events", json=event_to_json(e)) for e in (fresh, stale)]
    for answer in answers:
        assert answer.status_code == 409
        assert answer.json()["problems"][0]["code"] == "conflict"
    assert [await _state(db, e) for e in (fresh, stale)] == ["pending", "pending"]

