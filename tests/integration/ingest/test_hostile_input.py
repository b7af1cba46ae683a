"""Bodies that used to get a 500 (or a 202 the processor then parked), through the real gateway.

- numbers Python's json reads but should not: a 5,000-digit integer (int() raises ValueError
  past 4,300 digits, which was not caught), NaN, Infinity, 1e999;
- text PostgreSQL and UTF-8 cannot hold: U+0000 and unpaired surrogates (JSON ``\\ud800``).
"""

from __future__ import annotations

import json

import pytest

from services.common.serde.agency_json import event_to_json
from tests.factories import contact, referral
from tests.integration.ingest.conftest import Gateway, copies, topic_events

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}


def _raw(body: object) -> bytes:
    # ensure_ascii: a lone surrogate travels as the JSON escape \ud800 (it has no UTF-8 form).
    return json.dumps(body).encode()


@pytest.mark.parametrize(("number", "reason"), [
    ("9" * 5000, "has an integer of more than 64 digits"),
    ("-" + "1" * 65, "has an integer of more than 64 digits"),
    ("NaN", "has NaN, which is not a JSON number"),
    ("Infinity", "has Infinity, which is not a JSON number"),
    ("-Infinity", "has -Infinity, which is not a JSON number"),
    ("1e999", "has a number too large for a double"),
])
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events:batch"])
async def test_numbers_json_does_not_allow_are_422(
        gateway: Gateway, number: str, reason: str, path: str) -> None:
    body = _raw(event_to_json(referral("made", sla_working_days=5))).replace(
        b'"sla_working_days": 5', b'"sla_working_days": ' + number.encode())
    if path.endswith(":batch"):
        body = b'{"events": [' + body + b"]}"
    async with gateway.client() as http:
        response = await http.post(path, content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [
        {"field": "body", "reason": reason, "code": "invalid_number"}]


def _with(change: str) -> tuple[bytes, str, str]:
    """A body with text that cannot be stored, the path refused and the media type."""
    body = event_to_json(referral("made", reason="r"))
    if change == "nul_in_payload":
        body["payload"]["reason"] = "before\x00after"
        return _raw(body), "payload.reason", "application/json"
    if change == "surrogate_in_source":
        body["source"]["team"] = "omu \ud800"
        return _raw(body), "source.team", "application/json"
    if change == "nul_in_identifier":
        body["identifiers"][0]["value"] = "943476591\x00"
        return _raw(body), "identifiers[0].value", "application/json"
    if change == "surrogate_in_extra_key":
        body["extra"] = {"\udc00": "x"}
        return _raw(body), "extra", "application/json"
    if change == "nul_in_extra_value":
        body["extra"] = {"prison": "LEI\x00"}
        return _raw(body), "extra.prison", "application/json"
    if change == "surrogate_in_unknown_field":
        body["\ud800"] = "x"
        return _raw(body), "body", "application/json"
    event = contact("attended")
    native = event_to_json(event)
    cloudevent = {"specversion": "1.0", "id": event.event_id,
                  "source": "/agencies/hmp-leeds", "type": event.event_type,
                  "time": native["occurred_at"], "subject": "9434765919",
                  "data": {"payload": {**native["payload"], "contact_id": "c\x00-1"},
                           "source": {"service_kind": "PRISON", "system": "NOMIS"}}}
    return _raw(cloudevent), "data.payload.contact_id", "application/cloudevents+json"


@pytest.mark.parametrize("change", [
    "nul_in_payload", "surrogate_in_source", "nul_in_identifier", "surrogate_in_extra_key",
    "nul_in_extra_value", "surrogate_in_unknown_field", "nul_in_cloudevent"])
async def test_text_that_cannot_be_stored_is_422_with_its_path(
        gateway: Gateway, change: str) -> None:
    body, field, kind = _with(change)
    event_id = json.loads(body).get("event_id") or json.loads(body)["id"]
    async with gateway.client() as http:
        response = await http.post("/v1/events", content=body, headers={"content-type": kind})
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert {"field": field, "code": "invalid_character"} in [
        {"field": p["field"], "code": p["code"]} for p in problems]
    assert "\\u0000" not in response.text and "\\ud" not in response.text.lower()
    assert "943476591" not in response.text
    assert copies(await topic_events(gateway.settings, idle_ms=500), event_id) == 0


async def test_a_batch_refuses_only_the_item_that_cannot_be_stored(gateway: Gateway) -> None:
    bad, good = event_to_json(referral("made")), event_to_json(referral("made"))
    bad["source"]["system"] = "NOMIS\x00"
    async with gateway.client() as http:
        response = await http.post("/v1/events:batch", content=_raw({"events": [bad, good]}),
                                   headers=JSON)
    assert response.status_code == 200, response.text
    first, second = response.json()["items"]
    assert (first["status"], first["problems"]) == ("refused", [{
        "field": "source.system", "code": "invalid_character",
        "reason": "contains the NUL character (U+0000), which cannot be stored"}])
    assert second["status"] == "accepted"
    found = await topic_events(gateway.settings)
    assert (copies(found, bad["event_id"]), copies(found, good["event_id"])) == (0, 1)
