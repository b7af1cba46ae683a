"""Alert events: deterministic ids and the Avro round trip (schemas/alert_event.v*.avsc)."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources

import pytest

from services.alerts.codec import decode_alert_event, encode_alert_event
from services.alerts.events import AlertEvent, alert_event_id_for, alert_id_for
from services.common.serde.avro import DecodeError, alert_codec
from tests.factories import SOURCES
from tests.unit.processor.rules.helpers import T0, H, Person, transition


def raised_alert() -> AlertEvent:
    person = Person()
    person.apply(transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH"))
    return next(a for a in person.tick(T0 + 80 * H) if a.rule_id == "mh-72h-follow-up")


def test_dataclass_mirrors_the_schema_field_for_field() -> None:
    newest = alert_codec().current.version
    schema = json.loads(resources.files("schemas").joinpath(f"alert_event.v{newest}.avsc")
                        .read_text())
    assert [f["name"] for f in schema["fields"]] == [
        f.name for f in sorted(dataclasses.fields(AlertEvent),
                               key=lambda f: [s["name"] for s in schema["fields"]].index(f.name))]
    assert {f["name"] for f in schema["fields"]} == {f.name for f in dataclasses.fields(AlertEvent)}


def test_ids_are_deterministic_uuid5() -> None:
    alert = raised_alert()
    mental_health = SOURCES["MENTAL_HEALTH"].agency  # who published the trigger
    assert alert.alert_id == alert_id_for(alert.rule_id, mental_health, alert.trigger_event_id)
    # Event ids are unique per agency only: another agency's event with the same id is
    # another trigger, with another alert.
    assert alert_id_for(alert.rule_id, "another-agency", alert.trigger_event_id) != alert.alert_id
    assert alert.alert_event_id == alert_event_id_for(alert.alert_id, "raised")
    assert alert_event_id_for(alert.alert_id, "resolved") != alert.alert_event_id
    assert raised_alert().alert_id != alert.alert_id  # another trigger event, another alert


def test_raised_and_resolved_alerts_round_trip_through_avro() -> None:
    alert = raised_alert()
    assert decode_alert_event(encode_alert_event(alert)) == alert
    resolved = dataclasses.replace(alert, action="resolved", resolution="resolved late: x",
                                   resolving_event_id="e-2", actor="rules-engine", due_at=None)
    assert decode_alert_event(encode_alert_event(resolved)) == resolved


def test_garbage_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_alert_event(b"\xc3\x01" + b"\x00" * 12)
