"""POST /v1/events:batch: each item answered on its own, nothing claimed that was not written."""

from __future__ import annotations

import asyncio

import pytest

from services.common.serde.agency_json import event_to_json
from services.ingest.client import JoinedupClient
from tests.factories import contact, referral
from tests.integration.ingest.conftest import Gateway, copies, topic_events

pytestmark = pytest.mark.integration


async def test_batch_answers_each_item(gateway: Gateway) -> None:
    good, again, other_agency = referral("made"), contact("attended"), referral(
        "accepted", source="HOUSING")
    bad = event_to_json(contact("missed"))
    bad["identifiers"][0]["value"] = "123"
    changed = event_to_json(again)
    changed["payload"]["mode"] = "PHONE"
    async with gateway.client() as http:
        assert (await http.post("/v1/events", json=event_to_json(again))).status_code == 202
        response = await http.post("/v1/events:batch", json={"events": [
            event_to_json(good), event_to_json(again), bad, event_to_json(other_agency),
            event_to_json(good), changed]})
    assert response.status_code == 200, response.text
    result = response.json()
    assert [(i["index"], i["status"], i["http_status"]) for i in result["items"]] == [
        (0, "accepted", 202), (1, "already_accepted", 200), (2, "refused", 422),
        (3, "forbidden", 403), (4, "already_accepted", 200), (5, "conflict", 409)]
    assert result["items"][2]["problems"] == [{
        "field": "identifiers[0].value", "reason": "must be 10 digits",
        "code": "invalid_identifier"}]
    assert result["items"][2]["event_id"] == bad["event_id"]
    assert result["items"][4]["offset"] == result["items"][0]["offset"]
    assert result["all_written"] is False and result["not_written"] == 0
    assert result["counts"] == {"accepted": 1, "already_accepted": 2, "refused": 1,
                                "forbidden": 1, "conflict": 1}
    found = await topic_events(gateway.settings)
    assert copies(found, good.event_id) == 1 and copies(found, again.event_id) == 1
    assert len(found) == 2


async def test_cloudevents_batch_and_limits(gateway: Gateway) -> None:
    event = referral("made")
    native = event_to_json(event)
    cloudevent = {"specversion": "1.0", "id": event.event_id, "source": "hmp-leeds",
                  "type": event.event_type, "time": native["occurred_at"],
                  "data": {"recorded_at": native["recorded_at"], "payload": native["payload"],
                           "identifiers": native["identifiers"],
                           "source": {"service_kind": "PRISON", "system": "NOMIS"}}}
    limit = gateway.settings.api_max_batch_events
    async with gateway.client() as http:
        accepted = await http.post("/v1/events:batch", json=[cloudevent], headers={
            "content-type": "application/cloudevents-batch+json"})
        too_many = await http.post("/v1/events:batch", json={"events": [native] * (limit + 1)})
        malformed = await http.post("/v1/events:batch", json=[native])
    assert accepted.status_code == 200
    assert accepted.json()["items"][0]["status"] == "accepted"
    assert accepted.json()["all_written"] is True
    assert too_many.status_code == 422
    assert too_many.json()["problems"] == [{
        "field": "events", "reason": f"has more than {limit} events; split it",
        "code": "batch_too_large"}]
    assert malformed.status_code == 422
    assert malformed.json()["problems"][0]["field"] == "events"


async def test_client_publishes_batches_and_single_events(gateway: Gateway) -> None:
    events = [referral("made", referral_id=f"r-{i}") for i in range(150)]
    async with JoinedupClient(gateway.url, gateway.token) as client:
        results = await client.publish_batch(events[:100])
        single = await client.publish(events[100])
        again = await client.publish_batch(events[:100] + events[101:])
    assert {r.status for r in results} == {"accepted"} and single.status == "accepted"
    assert [r.status for r in again] == ["already_accepted"] * 100 + ["accepted"] * 49
    found = await topic_events(gateway.settings)
    assert len(found) == 150 and len({e.event_id for _, e in found}) == 150


async def test_concurrent_batches_sharing_ids_write_each_event_once(gateway: Gateway) -> None:
    events = [referral("made", referral_id=f"r-{i}") for i in range(60)]
    bodies = [event_to_json(e) for e in events]
    overlapping = [{"events": bodies[:40]}, {"events": bodies[20:]},
                   {"events": list(reversed(bodies))}]
    async with gateway.client() as http:
        answers = await asyncio.gather(*(http.post("/v1/events:batch", json=b)
                                         for b in overlapping))
    statuses: dict[str, list[str]] = {}
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for item in answer.json()["items"]:
            statuses.setdefault(item["event_id"], []).append(item["status"])
    for seen in statuses.values():  # one batch wrote each event; the others found it written
        assert sorted(seen) == ["accepted"] + ["already_accepted"] * (len(seen) - 1)
    found = await topic_events(gateway.settings)
    assert all(copies(found, e.event_id) == 1 for e in events)
