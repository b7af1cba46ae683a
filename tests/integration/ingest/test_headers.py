"""Messages on the topics carry what they are: content-type (with the schema), the event type
and the request's trace context, from the gateway to the agency topic and on through
admission to the person-events topic."""

from __future__ import annotations

import asyncio

import pytest

from services.common.serde.agency_event import decode_event
from services.common.serde.agency_json import event_to_json
from services.common.serde.headers import agency_event_headers
from services.processor.bootstrap import build_processor
from tests.factories import contact, referral
from tests.integration.ingest.conftest import Gateway
from tests.integration.processor.conftest import read_topic

pytestmark = pytest.mark.integration

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_headers_from_the_gateway_to_the_person_events_topic(gateway: Gateway) -> None:
    settings = gateway.settings
    single, batch = referral("made"), [contact("attended"), contact("missed")]
    async with gateway.client() as http:
        response = await http.post("/v1/events", json=event_to_json(single),
                                   headers={"traceparent": TRACE})
        assert response.status_code == 202, response.text
        response = await http.post("/v1/events:batch",
                                   json={"events": [event_to_json(e) for e in batch]})
        assert response.status_code == 200, response.text
    agency_topic = settings.topics.agency(single.source.agency)
    written = await read_topic(settings.kafka_bootstrap or "", agency_topic, 3)
    by_id = {decode_event(r.value).event_id: r for r in written}
    assert set(by_id) == {single.event_id, *(e.event_id for e in batch)}
    assert list(by_id[single.event_id].headers) == agency_event_headers(single, TRACE)
    for event in batch:  # no trace context in the request: none on the message
        assert list(by_id[event.event_id].headers) == agency_event_headers(event)

    processor = await build_processor(settings, migrate=False)  # admission forwards them
    task = asyncio.create_task(processor.run())
    try:
        forwarded = await read_topic(settings.kafka_bootstrap or "",
                                     settings.topics.person_events, 3)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    headers = {decode_event(r.value).event_id: dict(r.headers) for r in forwarded}
    assert headers[single.event_id]["traceparent"] == TRACE.encode()
    assert headers[single.event_id]["ce_type"] == b"referral.made"
    assert headers[single.event_id]["content-type"].startswith(b"application/avro; schema=")
    assert headers[single.event_id]["joinedup-origin-topic"] == agency_topic.encode()
    assert "traceparent" not in headers[batch[0].event_id]
