"""The webhook body: a CloudEvent (structured JSON) with the full or the signal-only data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cloudevents.core.bindings.http import HTTPMessage, from_structured_event
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.webhooks.payload import SIGNAL_FIELDS, AlertView, FeedEvent, body

AT = datetime(2026, 12, 6, 9, 30, 15, tzinfo=UTC)
ALERT_ID = "0b8f5c1e-7f0a-4a53-9c55-1d2e3f4a5b6c"
EVENT = FeedEvent(ALERT_ID, "6e1d2c3b-4a59-4f8e-8d7c-6b5a49382716", "escalated", 3, AT)
PERSON = "3f2b8a64-0c1d-4e5f-9a7b-6c5d4e3f2a10"
ALERT = AlertView(
    team_id="leeds-housing/options", team_name="Leeds housing options", severity="critical",
    rule_id="prison-release-no-accommodation", title="Released with nowhere to live",
    explanation="Released from HMP Leeds with no fixed abode; no housing referral found.",
    source_reference="Homelessness Reduction Act 2017, s213B", due_at=None,
    raised_at=AT - timedelta(hours=1), status="open", person_key=PERSON)
PUBLIC = "https://duty.example.org/"


def sent(content: bytes) -> dict[str, object]:
    decoded = json.loads(content)
    assert isinstance(decoded, dict)
    return decoded


def test_the_full_body_is_a_cloudevent_with_the_alert() -> None:
    made = body(EVENT, ALERT, False, PUBLIC)
    assert made.content_type.startswith("application/cloudevents+json")
    event = sent(made.content)
    assert {k: v for k, v in event.items() if k != "data"} == {
        "specversion": "1.0", "id": EVENT.alert_event_id, "source": "/joinedup/alerts",
        "type": "uk.joinedup.alert.escalated", "subject": ALERT_ID,
        "time": "2026-12-06T09:30:15Z", "datacontenttype": "application/json"}
    assert event["data"] == {
        "alert_id": ALERT_ID, "action": "escalated", "version": 3,
        "link": f"https://duty.example.org/alerts/{ALERT_ID}",
        "team_id": "leeds-housing/options", "team_name": "Leeds housing options",
        "severity": "critical", "rule_id": "prison-release-no-accommodation",
        "title": ALERT.title, "explanation": ALERT.explanation,
        "source_reference": ALERT.source_reference, "due_at": None,
        "raised_at": "2026-12-06T08:30:15Z", "status": "open", "person_id": PERSON}


def test_the_cloudevents_sdk_reads_it_back() -> None:
    made = body(EVENT, ALERT, False, PUBLIC)
    event = from_structured_event(HTTPMessage({"content-type": made.content_type},
                                              made.content))
    assert (event.get_id(), event.get_type(), event.get_subject(), event.get_time()) == (
        EVENT.alert_event_id, "uk.joinedup.alert.escalated", ALERT_ID, AT)
    data = event.get_data()
    assert isinstance(data, dict) and data["person_id"] == PERSON


def test_signal_only_carries_the_id_action_version_and_link_only() -> None:
    made = body(EVENT, ALERT, True, PUBLIC)
    data = sent(made.content)["data"]
    assert isinstance(data, dict) and tuple(data) == SIGNAL_FIELDS
    assert data == {"alert_id": ALERT_ID, "action": "escalated", "version": 3,
                    "link": f"https://duty.example.org/alerts/{ALERT_ID}"}
    for private in (PERSON, ALERT.title, ALERT.rule_id, ALERT.explanation, "leeds-housing"):
        assert private.encode() not in made.content


def test_an_alert_that_cannot_be_read_is_sent_as_a_signal() -> None:
    data = sent(body(EVENT, None, False, PUBLIC).content)["data"]
    assert isinstance(data, dict) and tuple(data) == SIGNAL_FIELDS


def test_times_are_utc_whatever_zone_they_come_in() -> None:
    elsewhere = AT.astimezone(ZoneInfo("Europe/London"))
    made = body(replace(EVENT, recorded_at=elsewhere), replace(ALERT, due_at=elsewhere), False,
                "http://127.0.0.1:8083")
    event = sent(made.content)
    assert event["time"] == "2026-12-06T09:30:15Z"
    assert isinstance(event["data"], dict) and event["data"]["due_at"] == "2026-12-06T09:30:15Z"


@given(title=st.text(max_size=200), explanation=st.text(max_size=400),
       action=st.sampled_from(["raised", "resolved", "woke", "reopened"]),
       version=st.integers(min_value=1, max_value=10_000))
def test_any_text_round_trips_through_the_json(title: str, explanation: str, action: str,
                                               version: int) -> None:
    made = body(replace(EVENT, action=action, version=version),
                replace(ALERT, title=title, explanation=explanation), False, PUBLIC)
    event = sent(made.content)
    data = event["data"]
    assert isinstance(data, dict)
    assert (data["title"], data["explanation"], data["action"], data["version"]) == (
        title, explanation, action, version)
    assert event["type"] == f"uk.joinedup.alert.{action}"
