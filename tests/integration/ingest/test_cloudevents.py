"""CloudEvents through the real gateway: binary mode and extension attributes accepted and
kept, and every record on the agency topic and the person-events topic carrying the
CloudEvents Kafka binding headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from services.common.serde.agency_event import decode_event
from services.common.serde.agency_json import event_to_json
from services.processor.bootstrap import build_processor
from tests.factories import contact, referral
from tests.integration.ingest.conftest import Gateway, opened
from tests.integration.processor.conftest import read_topic

pytestmark = pytest.mark.integration

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
BINDING = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")


def binary(event: Any, **extensions: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Binary mode, as an agency's CloudEvents SDK would send it."""
    native = event_to_json(event)
    headers = {"ce-specversion": "1.0", "ce-id": event.event_id,
               "ce-source": f"/agencies/{event.source.agency}", "ce-type": event.event_type,
               "ce-time": native["occurred_at"], "content-type": "application/json",
               **{f"ce-{k}": v for k, v in extensions.items()}}
    data = {"recorded_at": native["recorded_at"], "identifiers": native["identifiers"],
            "payload": native["payload"],
            "source": {k: v for k, v in native["source"].items() if k != "agency"}}
    return headers, data


async def test_binary_mode_and_extensions_are_accepted_and_kept(gateway: Gateway) -> None:
    event = referral("made")
    headers, data = binary(event, dataref="https://hmp-leeds.example/e/1",
                           recordedtime="2026-03-02T09:00:01Z")
    structured = contact("attended")
    native = event_to_json(structured)
    cloudevent = {"specversion": "1.0", "id": structured.event_id,
                  "source": structured.source.agency, "type": structured.event_type,
                  "time": native["occurred_at"], "traceparent": TRACE,
                  # NHS England's notification service: an object, and no dataref
                  "filtering": {"subscriptionId": "s-1", "nhsNumber": ["withheld"]},
                  "data": {"identifiers": native["identifiers"], "payload": native["payload"],
                           "source": {"service_kind": "PRISON", "system": "NOMIS"}}}
    async with gateway.client() as http:
        answer = await http.post("/v1/events", json=data, headers=headers)
        assert answer.status_code == 202, answer.text
        retry = await http.post("/v1/events", json=data, headers=headers)
        assert retry.status_code == 200 and retry.json()["status"] == "already_accepted"
        answer = await http.post("/v1/events", json=cloudevent,
                                 headers={"content-type": "application/cloudevents+json"})
        assert answer.status_code == 202, answer.text
        missing = await http.post("/v1/events", json=data, headers={
            k: v for k, v in headers.items() if k != "ce-id"})
        assert missing.status_code == 422
        assert [p["field"] for p in missing.json()["problems"]] == ["ce-id"]
        batch = await http.post("/v1/events:batch", json=data, headers=headers)
        assert batch.status_code == 422
        assert batch.json()["problems"][0]["code"] == "binary_mode_batch"

    topic = gateway.settings.topics.agency(event.source.agency)
    records = await read_topic(gateway.settings.kafka_bootstrap or "", topic, 2)
    written = {e.event_id: e for e in await opened(
        gateway.settings, [decode_event(r.value) for r in records])}
    assert written[event.event_id].extra == {"ce_dataref": "https://hmp-leeds.example/e/1",
                                             "ce_recordedtime": "2026-03-02T09:00:01Z"}
    assert written[structured.event_id].extra == {
        "ce_traceparent": TRACE,
        "ce_filtering": '{"nhsNumber":["withheld"],"subscriptionId":"s-1"}'}


async def test_every_record_carries_the_kafka_binding_headers(gateway: Gateway) -> None:
    settings = gateway.settings
    single, batch = referral("made"), [contact("attended"), contact("missed")]
    async with gateway.client() as http:
        answer = await http.post("/v1/events", json=event_to_json(single),
                                 headers={"traceparent": TRACE})
        assert answer.status_code == 202, answer.text
        answer = await http.post("/v1/events:batch",
                                 json={"events": [event_to_json(e) for e in batch]})
        assert answer.status_code == 200, answer.text
    agency_topic = settings.topics.agency(single.source.agency)
    written = await read_topic(settings.kafka_bootstrap or "", agency_topic, 3)

    processor = await build_processor(settings, migrate=False)  # admission forwards them
    task = asyncio.create_task(processor.run())
    try:
        forwarded = await read_topic(settings.kafka_bootstrap or "",
                                     settings.topics.person_events, 3)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()

    events = {e.event_id: e for e in (single, *batch)}
    for topic, records in ((agency_topic, written), (settings.topics.person_events, forwarded)):
        assert len(records) == 3, topic
        for record in records:
            headers = dict(record.headers)
            assert set(BINDING) <= headers.keys(), topic
            # A standard CloudEvents Kafka reader takes the record as a binary-mode event.
            message = KafkaMessage(headers=headers, key=record.key, value=b"")
            read = from_binary(message, JSONFormat())
            sent = events[read.get_id()]
            assert read.get_type() == sent.event_type
            assert read.get_source() == f"/agencies/{sent.source.agency}"
            assert read.get_time() == sent.occurred_at
            assert read.get_datacontenttype().startswith("application/avro; schema=")
            assert decode_event(record.value).event_id == sent.event_id
