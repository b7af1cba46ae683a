"""The gateway's domain: JSON -> AgencyEvent with per-field problems, and the content hash."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import Identifier
from services.common.serde.agency_json import event_to_json
from services.ingest.domain.parsing import content_hash, parse_cloudevent, parse_event
from tests.factories import T0, contact, discharge, referral, transition

NOW = T0 + timedelta(days=1)
TOLERANCE = timedelta(minutes=5)


def parse(body: dict) -> tuple:
    return parse_event(body, NOW, TOLERANCE)


@pytest.mark.parametrize("event", [
    referral("declined", decline_reason="CITES_OTHER_NEED_FIRST", cites_service_kind="HOUSING"),
    transition("scheduled", "PRISON_RELEASE", scheduled_for=T0.date(), in_custody_treatment=True),
    discharge("disengaged"),
    dataclasses.replace(contact("follow_up"), causation_id="c0ffee00-0000-4000-8000-000000000000",
                        extra={"prison": "LEI"}, sensitivity="MENTAL_HEALTH"),
])
def test_json_form_round_trips(event) -> None:
    parsed, problems = parse(event_to_json(event))
    assert problems == [] and parsed == event


@given(st.integers(min_value=0, max_value=999_999), st.integers(min_value=-720, max_value=720))
def test_times_are_utc_milliseconds_whatever_the_offset(micros: int, offset_minutes: int) -> None:
    event = referral("made")
    body = event_to_json(event)
    zone = timedelta(minutes=offset_minutes)
    moment = (T0 + timedelta(microseconds=micros)).astimezone(timezone(zone))
    body["occurred_at"] = body["recorded_at"] = moment.isoformat()
    parsed, problems = parse(body)
    assert problems == []
    assert parsed.occurred_at.tzinfo == UTC
    assert parsed.occurred_at == T0 + timedelta(microseconds=micros // 1000 * 1000)


def test_content_hash_is_stable_and_sensitive_to_content() -> None:
    event = referral("made")
    body = event_to_json(event)
    reordered = dict(reversed(list(body.items())))
    assert content_hash(parse(body)[0]) == content_hash(parse(reordered)[0])
    changed = copy.deepcopy(body)
    changed["payload"]["reason"] = "other"
    assert content_hash(parse(body)[0]) != content_hash(parse(changed)[0])
    assert len(content_hash(event)) == 64


@pytest.mark.parametrize(("mutate", "field", "code"), [
    (lambda b: b.pop("event_id"), "event_id", "schema_violation"),
    (lambda b: b.update(event_id="not-a-uuid"), "event_id", "schema_violation"),
    (lambda b: b.update(extra_field=1), "extra_field", "schema_violation"),
    (lambda b: b["payload"].pop("family"), "payload.family", "schema_violation"),
    (lambda b: b["payload"].update(family="memo"), "payload.family", "schema_violation"),
    (lambda b: b["payload"].update(to_service_kind="SPA"), "payload.to_service_kind",
     "schema_violation"),
    (lambda b: b["source"].update(agency=""), "source.agency", "schema_violation"),
    (lambda b: b.update(identifiers=[]), "identifiers", "schema_violation"),
    (lambda b: b["identifiers"][0].update(value=9434765919), "identifiers[0].value",
     "schema_violation"),
    (lambda b: b.update(event_type="referral"), "event_type", "unknown_event_type"),
    (lambda b: b["identifiers"][0].update(scheme="nino"), "identifiers[0].scheme",
     "unknown_identifier_scheme"),
    (lambda b: b["identifiers"][0].update(value="943476591"), "identifiers[0].value",
     "invalid_identifier"),
])
def test_problems_name_the_field(mutate, field: str, code: str) -> None:
    body = event_to_json(referral("made"))
    mutate(body)
    event, problems = parse(body)
    assert event is None
    assert (problems[0].field, problems[0].code) == (field, code)
    assert all("943476591" not in p.reason for p in problems)


def test_future_is_measured_against_the_given_clock() -> None:
    body = event_to_json(referral("made", at=NOW + TOLERANCE))
    assert parse(body)[1] == []
    body = event_to_json(referral("made", at=NOW + TOLERANCE + timedelta(seconds=1)))
    assert [p.field for p in parse(body)[1]] == ["occurred_at"]


def _cloudevent(**changes: object) -> dict:
    event = contact("attended")
    native = event_to_json(event)
    body = {"specversion": "1.0", "id": event.event_id, "source": "/agencies/hmp-leeds",
            "type": event.event_type, "time": native["occurred_at"],
            "data": {"payload": native["payload"], "identifiers": native["identifiers"],
                     "source": {"service_kind": "PRISON", "system": "NOMIS"}}}
    body.update(changes)
    return body


def test_cloudevent_attributes_map_onto_the_envelope() -> None:
    body = _cloudevent(subject="noms_number:A1234BC", dataschema="agency_event.v2")
    event, problems = parse_cloudevent(body, NOW, TOLERANCE)
    assert problems == []
    assert event.event_id == body["id"] and event.source.agency == "hmp-leeds"
    assert event.occurred_at == event.recorded_at == datetime.fromisoformat(body["time"])
    assert event.identifiers == (Identifier("noms_number", "A1234BC"),
                                 Identifier("nhs_number", "9434765919"))


@pytest.mark.parametrize(("changes", "field"), [
    ({"specversion": "0.3"}, "specversion"),
    ({"source": "https://agency.example/x/y"}, "source"),
    ({"type": "uk.nhs.something"}, "type"),
    ({"dataschema": "https://example/other.json"}, "dataschema"),
    ({"time": "2999-01-01T00:00:00Z"}, "time"),
    ({"subject": "A1234BC"}, "subject"),  # a bare subject is an NHS number: this one is not
    ({"subject": "x:" + "9" * 80}, "subject"),
])
def test_cloudevent_problems_use_cloudevent_paths(changes: dict, field: str) -> None:
    event, problems = parse_cloudevent(_cloudevent(**changes), NOW, TOLERANCE)
    assert event is None and problems[0].field == field


@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_a_time_before_year_one_in_utc_is_refused_not_a_crash(field: str) -> None:
    """Found by schemathesis: a valid RFC 3339 time whose UTC instant Python cannot hold
    (year 1, a positive offset) used to end the request with a 500."""
    body = event_to_json(contact("attended"))
    body[field] = "0001-01-01T00:00:00+00:05"
    event, problems = parse_event(body, T0, timedelta(minutes=5))
    assert event is None
    assert [(p.field, p.code) for p in problems] == [(field, "schema_violation")]
    assert "outside the years 1 to 9999" in problems[0].reason


def test_a_cloudevent_time_before_year_one_in_utc_is_refused() -> None:
    body = {"specversion": "1.0", "id": "b8a1abcd-1a69-46c7-8da4-f9fc3c6da5d7",
            "source": "hmp-leeds", "type": "contact.attended",
            "time": "0001-01-01T00:00:01+01:00",
            "data": {"source": {"service_kind": "PRISON", "system": "NOMIS"},
                     "identifiers": [{"scheme": "nhs_number", "value": "9434765919"}],
                     "payload": {"family": "contact", "contact_id": "c-1"}}}
    event, problems = parse_cloudevent(body, T0, timedelta(minutes=5))
    assert event is None and [p.field for p in problems] == ["time"]
