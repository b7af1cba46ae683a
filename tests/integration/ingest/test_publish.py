"""POST /v1/events against a real gateway, broker and PostgreSQL: every answer it can give."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.common.serde.agency_json import event_to_json
from services.ingest.credentials import create_agency, revoke_credential, rotate_credential
from tests.factories import NHS, SOURCES, contact, referral, transition
from tests.integration.ingest.conftest import Gateway, copies, opened, topic_events

pytestmark = pytest.mark.integration


async def test_accepted_event_is_on_the_topic_keyed_by_a_pseudonym_of_the_person(
        gateway: Gateway) -> None:
    event = referral("made")
    async with gateway.client() as http:
        response = await http.post("/v1/events", json=event_to_json(event))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["event_id"] == event.event_id
    found = await topic_events(gateway.settings)
    [(key, written)] = found
    # the same key for each of the person's events, and no identifier in it
    assert key == gateway.settings.subject_keys().of(event)
    assert NHS.encode() not in key and len(key) == 32
    # personal fields are sealed for the journey; the receipt's transit key opens them
    assert NHS not in repr(written) and written.identifiers[0].value.startswith("sealed:")
    assert await opened(gateway.settings, [written]) == [event]
    assert body["offset"] >= 0 and 0 <= body["partition"] < gateway.settings.topic_partitions


async def test_retry_answers_already_accepted_and_writes_nothing(gateway: Gateway) -> None:
    body = event_to_json(transition("occurred", "PRISON_RELEASE", reason="RELEASED"))
    async with gateway.client() as http:
        first = await http.post("/v1/events", json=body)
        second = await http.post("/v1/events", json=body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {**first.json(), "status": "already_accepted"}
    assert copies(await topic_events(gateway.settings), body["event_id"]) == 1


async def test_same_id_with_different_content_is_a_conflict(gateway: Gateway) -> None:
    body = event_to_json(referral("made"))
    changed = copy.deepcopy(body)
    changed["payload"]["reason"] = "a different fact under the same id"
    async with gateway.client() as http:
        assert (await http.post("/v1/events", json=body)).status_code == 202
        response = await http.post("/v1/events", json=changed)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    [problem] = response.json()["problems"]
    assert problem == {"field": "event_id", "code": "conflict",
                       "reason": "was already accepted with different content"}


async def test_another_agency_reusing_an_event_id_neither_blocks_nor_shadows(
        gateway: Gateway) -> None:
    """Event ids are chosen by each agency: the housing team posting an id first (by accident
    or on purpose) must not turn the prison's later event with that id into a 409."""
    housing_token = await create_agency(gateway.settings, SOURCES["HOUSING"].agency,
                                        "Leeds housing", "HOUSING")
    prison = referral("made")
    housing = dataclasses.replace(referral("acknowledged", source="HOUSING"),
                                  event_id=prison.event_id)
    async with gateway.client(housing_token) as http:
        assert (await http.post("/v1/events", json=event_to_json(housing))).status_code == 202
    async with gateway.client() as http:
        first = await http.post("/v1/events", json=event_to_json(prison))
        again = await http.post("/v1/events", json=event_to_json(prison))
    assert first.status_code == 202, first.text
    assert again.status_code == 200  # the prison's own retry, recognised as its own
    found = await topic_events(gateway.settings)
    assert sorted(e.source.agency for _, e in found if e.event_id == prison.event_id) == sorted(
        [SOURCES["HOUSING"].agency, SOURCES["PRISON"].agency])


async def test_concurrent_posts_of_one_event_write_one_copy(gateway: Gateway) -> None:
    body = event_to_json(referral("made"))
    async with gateway.client() as http:
        answers = await asyncio.gather(*(http.post("/v1/events", json=body) for _ in range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 7 + [202]
    assert len({(a.json()["partition"], a.json()["offset"]) for a in answers}) == 1
    assert copies(await topic_events(gateway.settings), body["event_id"]) == 1


@pytest.mark.parametrize("token", [None, "", "jdu_not-a-token"])
async def test_missing_or_wrong_token_is_401(gateway: Gateway, token: str | None) -> None:
    async with gateway.client(token or "") as http:
        response = await http.post("/v1/events", json=event_to_json(referral("made")))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["problems"] == [{
        "field": "authorization", "reason": "a valid bearer token is required",
        "code": "unauthenticated"}]


async def test_revoked_token_is_401_and_rotation_keeps_the_old_one_for_the_grace(
        gateway: Gateway) -> None:
    rotated = await rotate_credential(gateway.settings, "hmp-leeds", grace=timedelta(hours=1))
    async with gateway.client() as old, gateway.client(rotated) as new:
        assert (await old.post("/v1/events", json=event_to_json(referral("made")))
                ).status_code == 202  # still inside the grace period
        assert (await new.post("/v1/events", json=event_to_json(referral("made")))
                ).status_code == 202
        assert await revoke_credential(gateway.settings, "hmp-leeds") == 2
        await asyncio.sleep(gateway.settings.api_credential_cache_seconds + 0.1)
        for http in (old, new):
            response = await http.post("/v1/events", json=event_to_json(referral("made")))
            assert response.status_code == 401


async def test_publishing_as_another_agency_is_403(gateway: Gateway) -> None:
    event = referral("accepted", source="HOUSING")  # a registered agency, but not ours
    async with gateway.client() as http:
        response = await http.post("/v1/events", json=event_to_json(event))
    assert response.status_code == 403
    assert response.json()["problems"] == [{
        "field": "source.agency", "code": "forbidden_source",
        "reason": "must be the agency the credential belongs to"}]


def _broken(change: str) -> dict:
    body = event_to_json(referral("made"))
    now = datetime.now(UTC)
    if change == "missing_field":
        del body["payload"]["referral_id"]
    elif change == "unknown_type":
        body["event_type"] = "referral.misplaced"
    elif change == "future":
        body["occurred_at"] = body["recorded_at"] = (now + timedelta(hours=1)).isoformat()
    elif change == "recorded_before":
        body["recorded_at"] = (datetime.fromisoformat(body["occurred_at"])
                               - timedelta(minutes=5)).isoformat()
    elif change == "nhs_check_digit":
        body["identifiers"][0]["value"] = "9434765918"
    elif change == "unknown_scheme":
        body["identifiers"].append({"scheme": "passport", "value": "X1"})
    elif change == "wrong_payload":
        body["payload"] = {"family": "contact", "contact_id": "c-1"}
    elif change == "naive_time":
        body["occurred_at"] = "2026-03-02T09:00:00"
    return body


@pytest.mark.parametrize(("change", "field", "reason", "code"), [
    ("missing_field", "payload.referral_id", "Field required", "schema_violation"),
    ("unknown_type", "event_type", "must be one of: contact.attended", "unknown_event_type"),
    ("future", "occurred_at", "is more than 300s in the future", "occurred_in_future"),
    ("recorded_before", "recorded_at", "is before occurred_at", "recorded_before_occurred"),
    ("nhs_check_digit", "identifiers[0].value", "check digit does not match",
     "invalid_identifier"),
    ("unknown_scheme", "identifiers[1].scheme", "unknown scheme; expected one of nhs_number",
     "unknown_identifier_scheme"),
    ("wrong_payload", "payload.family", "must be referral for a referral event",
     "payload_mismatch"),
    ("naive_time", "occurred_at", "Input should have timezone info", "schema_violation"),
])
async def test_invalid_events_are_422_with_field_and_reason(
        gateway: Gateway, change: str, field: str, reason: str, code: str) -> None:
    body = _broken(change)
    async with gateway.client() as http:
        response = await http.post("/v1/events", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert [p["field"] for p in problems] == [field]
    assert problems[0]["reason"].startswith(reason) and problems[0]["code"] == code
    assert "9434765918" not in response.text  # a value is never echoed back
    assert copies(await topic_events(gateway.settings, idle_ms=500), body["event_id"]) == 0


async def test_body_over_the_limit_is_413_declared_or_streamed(migrated, servers) -> None:
    from services.ingest.credentials import create_agency
    from tests.integration.ingest.conftest import gateway_thread

    settings = migrated.model_copy(update={"api_max_body_bytes": 2048})
    token = await create_agency(settings, "hmp-leeds", "HMP Leeds", "PRISON")
    body = event_to_json(referral("made"))
    body["extra"] = {f"k{i}": "x" * 40 for i in range(49)}
    import json

    raw = json.dumps(body).encode()

    async def chunks():  # no Content-Length: the server must count while reading
        for start in range(0, len(raw), 512):
            yield raw[start:start + 512]

    with gateway_thread(settings) as url:
        gw = Gateway(url, settings, token)
        async with gw.client() as http:
            declared = await http.post("/v1/events", content=raw,
                                       headers={"content-type": "application/json"})
            streamed = await http.post("/v1/events", content=chunks(),
                                       headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["problems"][0]["field"] == "body"
        assert response.json()["problems"][0]["reason"].startswith("is larger than 2048 bytes")
    assert "content-length" not in streamed.request.headers


async def test_wrong_content_type_is_415(gateway: Gateway) -> None:
    async with gateway.client() as http:
        response = await http.post("/v1/events", content=b"event_id=1",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    [problem] = response.json()["problems"]
    assert problem["field"] == "content-type"
    assert problem["reason"] == ("must be one of: application/json, "
                                 "application/cloudevents+json")


async def test_cloudevent_maps_onto_the_envelope(gateway: Gateway) -> None:
    event = contact("attended")
    native = event_to_json(event)
    cloudevent = {
        "specversion": "1.0", "id": event.event_id, "source": f"/agencies/{event.source.agency}",
        "type": event.event_type, "time": native["occurred_at"], "subject": "9434765919",
        "dataschema": "https://joinedup.example/schemas/agency_event.v2.avsc",
        "datacontenttype": "application/json",
        "data": {"recorded_at": native["recorded_at"], "payload": native["payload"],
                 "source": {k: v for k, v in native["source"].items() if k != "agency"}},
    }
    async with gateway.client() as http:
        accepted = await http.post("/v1/events", json=cloudevent,
                                   headers={"content-type": "application/cloudevents+json"})
        retried = await http.post("/v1/events", json=native)  # the same fact in native form
        broken = copy.deepcopy(cloudevent)
        broken["id"], broken["subject"] = str(uuid.uuid4()), "nhs_number:9434765918"
        refused = await http.post("/v1/events", json=broken,
                                  headers={"content-type": "application/cloudevents+json"})
    assert accepted.status_code == 202, accepted.text
    assert retried.status_code == 200
    [(_, written)] = await topic_events(gateway.settings)
    assert await opened(gateway.settings, [written]) == [event]
    assert refused.status_code == 422
    assert [(p["field"], p["reason"]) for p in refused.json()["problems"]] == [
        ("subject", "check digit does not match")]


async def test_health_readiness_and_metrics_without_personal_data(gateway: Gateway) -> None:
    async with gateway.client() as http:
        await http.post("/v1/events", json=event_to_json(referral("made")))
        await http.post("/v1/events", json=_broken("nhs_check_digit"))
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        metrics = (await http.get("/metrics")).text
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert ('joinedup_ingest_events_total{agency="hmp-leeds",outcome="accepted"} 1.0'
            in metrics)
    assert ('joinedup_ingest_refusals_total{agency="hmp-leeds",reason="invalid_identifier"} 1.0'
            in metrics)
    assert "9434765918" not in metrics and "9434765919" not in metrics
