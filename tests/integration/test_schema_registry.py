"""Readable by standard tools: a message joinedup writes in the Confluent wire format is read
from the real broker and decoded with fastavro and the schema fetched by id from the
registry the gateway serves, as a Kafka tool would; the registry's REST subset answers in
Confluent's shapes; the worker takes a topic mixing both framings."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator

import fastavro
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.common.event_log import EventLog
from services.common.kafka import ensure_topics, stop_consumer
from services.common.serde import confluent
from services.common.serde.agency_event import encode_event, event_to_record
from services.common.serde.avro import agency_codec, confluent_schema_id, use_framing
from services.common.settings import Settings
from services.ingest.entrypoints.http import create_app
from services.processor.bootstrap import Processor
from tests import factories as f
from tests.integration.ingest.conftest import gateway_thread
from tests.integration.processor.conftest import (  # noqa: F401 - running is a fixture
    publish_raw,
    running,
    wait_for,
)

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture
def writes_confluent() -> Iterator[None]:
    use_framing(confluent.CONFLUENT)
    try:
        yield
    finally:
        use_framing(None)


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's registry routes over ASGI (they read no database)."""
    transport = httpx.ASGITransport(app=create_app(settings, migrate=False))
    async with httpx.AsyncClient(transport=transport,
                                 base_url="http://test/schema-registry") as client:
        yield client


@pytest.mark.usefixtures("writes_confluent")
async def test_a_kafka_tool_decodes_what_joinedup_wrote_with_the_schema_fetched_by_id(
        migrated: Settings) -> None:
    event = f.referral("made", reason="needs a tenancy")
    await ensure_topics(migrated, agencies=[event.source.agency])
    producer = AIOKafkaProducer(bootstrap_servers=migrated.kafka_bootstrap)
    await producer.start()
    try:
        log = EventLog(producer, migrated.topics, migrated.subject_keys())
        await (await log.send(event))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(migrated.topics.agency(event.source.agency),
                                bootstrap_servers=migrated.kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await stop_consumer(consumer)
    value = message.value
    assert value is not None and value[0] == 0  # the Confluent magic byte
    schema_id = int.from_bytes(value[1:5], "big")

    with gateway_thread(migrated) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.get(f"/schema-registry/schemas/ids/{schema_id}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == MEDIA_TYPE
    writer = fastavro.parse_schema(json.loads(answer.json()["schema"]))
    record = fastavro.schemaless_reader(io.BytesIO(value[5:]), writer)
    assert isinstance(record, dict)
    assert str(record["event_id"]) == event.event_id
    assert record["event_type"] == "referral.made"
    assert record["occurred_at"] == event.occurred_at
    assert record["payload"]["reason"] == "needs a tenancy"
    assert record["source"]["agency"] == event.source.agency


async def test_subjects_and_versions_answer_in_the_registry_shapes(
        registry: httpx.AsyncClient, settings: Settings) -> None:
    topics = settings.topics
    subject = f"{topics.person_events}-value"
    subjects = (await registry.get("/subjects")).json()
    assert subject in subjects and f"{topics.alerts}-value" in subjects
    assert f"{topics.person_events}-joinedup.IdentityEvent" in subjects

    versions = await registry.get(f"/subjects/{subject}/versions")
    assert versions.headers["content-type"] == MEDIA_TYPE
    assert versions.json() == [v.version for v in agency_codec().versions]

    newest = agency_codec().current
    latest = (await registry.get(f"/subjects/{subject}/versions/latest")).json()
    assert latest == {"subject": subject, "version": newest.version,
                      "id": confluent_schema_id(newest.fingerprint), "schema": newest.text}
    first = (await registry.get(f"/subjects/{subject}/versions/1")).json()
    assert first["id"] == confluent_schema_id(agency_codec().versions[0].fingerprint)
    raw = await registry.get(f"/subjects/{subject}/versions/latest/schema")
    assert raw.json()["name"] == "AgencyEvent"

    used = (await registry.get(f"/schemas/ids/{latest['id']}/versions")).json()
    assert {"subject": subject, "version": newest.version} in used
    by_id = (await registry.get(f"/schemas/ids/{latest['id']}/schema")).json()
    assert by_id == json.loads(newest.text)

    # every agency topic's subject answers, listed or not
    agency_subject = f"{topics.agency('hmp-leeds')}-value"
    agency_latest = (await registry.get(f"/subjects/{agency_subject}/versions/latest")).json()
    assert agency_latest["id"] == latest["id"]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/subjects/nobody-value/versions", 404, 40401),
    ("/subjects/{person_events}-value/versions/99", 404, 40402),
    ("/subjects/{person_events}-value/versions/first", 422, 42202),
    ("/subjects/{person_events}-value/versions/0", 422, 42202),
    ("/schemas/ids/7", 404, 40403),
    ("/schemas/ids/7/versions", 404, 40403),
])
async def test_errors_are_the_registrys_error_codes(registry: httpx.AsyncClient,
                                                    settings: Settings, path: str,
                                                    status: int, code: int) -> None:
    answer = await registry.get(path.format(person_events=settings.topics.person_events))
    assert answer.status_code == status
    assert answer.headers["content-type"] == MEDIA_TYPE
    body = answer.json()
    assert body["error_code"] == code and body["message"]


async def test_the_registry_is_read_only(registry: httpx.AsyncClient, settings: Settings
                                         ) -> None:
    subject = f"{settings.topics.person_events}-value"
    answer = await registry.post(f"/subjects/{subject}/versions", json={"schema": "{}"})
    assert answer.status_code == 405


async def test_the_worker_takes_a_topic_mixing_both_framings(
        running: Processor) -> None:  # noqa: F811
    settings = running.settings
    events = [f.contact("attended", contact_id=f"c-{i}") for i in range(6)]
    key = settings.subject_keys().of(events[0])
    values = [encode_event(e) if i % 2 else confluent.encode(agency_codec(), event_to_record(e))
              for i, e in enumerate(events)]
    assert {v[0] for v in values} == {0x00, 0xC3}
    await publish_raw(settings, [(key, v) for v in values])

    assert await wait_for(running.pool, "SELECT count(*) FROM event_archive", 6) == 6
    archived = {str(r["event_id"]) for r in await running.pool.fetch(
        "SELECT event_id FROM event_archive")}
    assert archived == {e.event_id for e in events}
    assert await running.pool.fetchval("SELECT count(*) FROM dead_letter") == 0
