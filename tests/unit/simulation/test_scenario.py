"""The hand-written demo scenarios: one valid person each, telling the story they name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.events import Referral, Transition
from services.common.serde.agency_event import decode_event, encode_event
from services.common.validation import event_problems
from services.simulation.agencies import AGENCY_BY_ID
from services.simulation.scenario import SCENARIOS, scenario

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_is_one_valid_person(name: str) -> None:
    events = scenario(name, START)
    assert len(events) >= 2
    assert len({e.identifier_key for e in events}) == 1
    assert len({e.event_id for e in events}) == len(events)
    assert [e.recorded_at for e in events] == sorted(e.recorded_at for e in events)
    for event in events:
        assert event_problems(event) == []
        assert event.source.agency in AGENCY_BY_ID
        assert event.occurred_at >= START.replace(hour=0)
        assert decode_event(encode_event(event)) == event
    assert scenario(name, START) == events  # deterministic ids and times


def test_scenarios_are_different_people() -> None:
    keys = [scenario(name, START)[0].identifier_key for name in SCENARIOS]
    assert len(set(keys)) == len(keys)


def test_released_to_no_fixed_abode_is_late_and_homeless() -> None:
    events = scenario("released-to-no-fixed-abode", START)
    release = next(e for e in events if e.event_type == "transition.occurred")
    assert isinstance(release.payload, Transition)
    assert release.payload.reason == "RELEASED"
    assert release.payload.accommodation_on_leaving == "NO_FIXED_ABODE"
    made = next(e for e in events if e.event_type == "referral.made")
    assert release.occurred_at - made.occurred_at < timedelta(days=56)
    assert not any(e.event_type == "contact.attended" and e.source.service_kind == "SUBSTANCE_USE"
                   for e in events)


def test_psychiatric_discharge_has_no_follow_up() -> None:
    events = scenario("psychiatric-discharge-without-follow-up", START)
    kinds = [e.payload.kind for e in events if isinstance(e.payload, Transition)]
    assert "MENTAL_HEALTH_DISCHARGE" in kinds
    assert not any(e.event_type == "contact.follow_up" for e in events)
    assert all(e.sensitivity == "MENTAL_HEALTH" for e in events)


def test_stuck_between_services_ping_pongs() -> None:
    declines = [e.payload for e in scenario("stuck-between-services", START)
                if e.event_type == "referral.declined" and isinstance(e.payload, Referral)]
    pairs = {(d.to_service_kind, d.cites_service_kind) for d in declines}
    assert pairs == {("MENTAL_HEALTH", "SUBSTANCE_USE"), ("SUBSTANCE_USE", "MENTAL_HEALTH")}
    assert len(declines) == 4
    assert all(d.decline_reason == "CITES_OTHER_NEED_FIRST" for d in declines)


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="released-to-no-fixed-abode"):
        scenario("no-such-story", START)
