"""The trace behind `joinedup explain`: why an alert fired, why an expectation was met, why a
rule stayed silent, in the words of the very tests the engine decided with."""

from __future__ import annotations

import dataclasses
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.events import AgencyEvent
from services.processor.domain.rules.explain import render_trace, trace_json
from services.processor.domain.rules.trace import Other, trace, why_not
from tests.unit.processor.rules.helpers import (
    NHS,
    PACK,
    T0,
    D,
    H,
    Person,
    contact,
    referral,
    transition,
)

RULE = "mh-72h-follow-up"
PERSON = "person-1"


def discharged() -> AgencyEvent:
    return transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH")


def test_a_fired_alert_names_the_deadline_and_every_near_miss_with_its_reason() -> None:
    trigger = discharged()
    missed = contact("missed", T0 + 10 * H)
    housing = contact("follow_up", T0 + 20 * H, by="HOUSING")
    found = trace(PACK, PERSON, [trigger, missed, housing], T0 + 80 * H, RULE)
    [rule] = found.rules
    [x] = rule.expectations
    assert rule.fired and x.fired and x.expectation.status == "alerted"
    assert x.trigger is not None and x.trigger.event_id == trigger.event_id
    assert x.why == ("fired: the deadline 2026-03-05 09:00 UTC passed with nothing matching "
                     "recorded by then")
    reasons = {m.event.event_id: m.reason for m in x.near_misses}
    assert reasons == {
        missed.event_id: "wrong event type: contact.missed, expected contact.attended or "
                         "contact.follow_up",
        housing.event_id: "wrong service kind: HOUSING, expected MENTAL_HEALTH",
    }
    text = "\n".join(render_trace(found))
    assert "wrong service kind: HOUSING" in text and trigger.event_id in text
    assert NHS not in text and NHS not in str(trace_json(found))


def test_a_met_expectation_did_not_fire_and_says_what_met_it() -> None:
    follow_up = contact("follow_up", T0 + 24 * H)
    found = trace(PACK, PERSON, [discharged(), follow_up], T0 + 80 * H, RULE)
    [x] = found.rules[0].expectations
    assert not x.fired and x.expectation.status == "fulfilled"
    assert x.expectation.fulfilled_by == follow_up.event_id
    assert x.why.startswith("did not fire: met: contact.follow_up")


def test_a_late_follow_up_fired_then_resolved_late() -> None:
    found = trace(PACK, PERSON, [discharged(), contact("attended", T0 + 80 * H)],
                  T0 + 90 * H, RULE)
    [x] = found.rules[0].expectations
    assert x.fired and x.expectation.status == "resolved"
    assert "then resolved: resolved late: contact.attended" in x.why


def test_an_excluded_release_reason_is_why_a_rule_did_not_fire() -> None:
    scheduled = transition("scheduled", "PRISON_RELEASE", T0, scheduled_for=date(2026, 6, 1),
                           reason="TEMPORARY_ABSENCE_RELEASE")
    found = trace(PACK, PERSON, [scheduled], T0 + D, "prison-release-duty-to-refer")
    [rule] = found.rules
    assert not rule.fired and rule.expectations == []
    assert rule.why == "did not fire: no event matched its trigger"
    [miss] = rule.trigger_misses
    assert miss.event.event_id == scheduled.event_id
    assert "payload.reason not in" in miss.reason
    assert miss.reason.endswith("TEMPORARY_ABSENCE_RELEASE is excluded")


def test_a_contact_before_the_discharge_was_outside_the_window() -> None:
    early = contact("follow_up", T0 - 2 * H)
    found = trace(PACK, PERSON, [early, discharged()], T0 + 80 * H, RULE)
    [x] = found.rules[0].expectations
    [miss] = x.near_misses
    assert miss.event.event_id == early.event_id
    assert miss.reason == ("outside the window: it happened on 2026-03-02 07:00 UTC, before "
                           "the window opened on 2026-03-02 09:00 UTC")


def test_a_follow_up_after_the_alert_stopped_taking_late_events_is_named() -> None:
    later = contact("attended", T0 + 401 * D, by="HOUSING")  # moves the clock on
    too_late = contact("follow_up", T0 + 402 * D)
    found = trace(PACK, PERSON, [discharged(), later, too_late], T0 + 403 * D, RULE)
    [x] = found.rules[0].expectations
    assert x.expectation.status == "alerted"
    assert [m.reason for m in x.near_misses if m.event.event_id == too_late.event_id] == [
        "outside the window: it happened on 2027-04-08 09:00 UTC, after the alert stopped "
        "taking late events on 2027-03-05 09:00 UTC"]


def test_a_referral_for_another_tracked_thing_is_named() -> None:
    made = referral("made", "HOUSING", T0, rid="r-1", sla=2)
    other = referral("acknowledged", "HOUSING", T0 + H, rid="r-2")
    found = trace(PACK, PERSON, [made, other], T0 + 10 * D, "referral-answer-sla")
    [x] = found.rules[0].expectations
    assert [m.reason for m in x.near_misses if m.event.event_id == other.event_id] == [
        "about another referral_id than the trigger's"]


def test_an_unlinked_possible_match_is_a_different_person_never_folded() -> None:
    theirs = contact("follow_up", T0 + 5 * H)
    found = trace(PACK, PERSON, [discharged()], T0 + 80 * H, RULE,
                  [Other(theirs, "unlinked identifier (nhs_number, agency mh-trust-leeds)")])
    [x] = found.rules[0].expectations
    assert x.fired  # the other person's contact did not meet it
    [miss] = x.near_misses
    assert miss.event.event_id == theirs.event_id
    assert miss.reason == ("a different person: unlinked identifier (nhs_number, agency "
                           "mh-trust-leeds)")


def test_a_pair_half_alone_matched_the_trigger_and_raised_nothing() -> None:
    decline = referral("declined", "MENTAL_HEALTH", T0, decline_reason="CITES_OTHER_NEED_FIRST",
                       cites="SUBSTANCE_USE", by="MENTAL_HEALTH")
    found = trace(PACK, PERSON, [decline], T0 + D, "stuck-between-services")
    [idle] = found.rules[0].idle_triggers
    assert idle.event.event_id == decline.event_id and "no other matching event" in idle.reason


def test_an_open_expectation_is_not_fired_yet_and_an_unknown_rule_is_an_error() -> None:
    found = trace(PACK, PERSON, [discharged()], T0 + H, RULE)
    assert found.rules[0].expectations[0].why.startswith("not fired (yet)")
    try:
        trace(PACK, PERSON, [], T0, "no-such-rule")
    except KeyError:
        return
    raise AssertionError("an unknown rule must be refused")


def test_why_not_names_the_first_failing_test_and_none_when_it_matches() -> None:
    rule = PACK.by_id[RULE]
    assert why_not(rule.expect, {"event_type": "contact.attended",  # type: ignore[arg-type]
                                 "source.service_kind": "MENTAL_HEALTH"}) is None
    assert why_not(rule.trigger, {"event_type": "transition.occurred",
                                  "payload.kind": "LEAVING_CARE"}) == (
        "condition payload.kind = MENTAL_HEALTH_DISCHARGE not met: it is LEAVING_CARE")


_BUILDERS = [
    lambda at: transition("occurred", "MENTAL_HEALTH_DISCHARGE", at, by="MENTAL_HEALTH"),
    lambda at: contact("follow_up", at),
    lambda at: contact("attended", at, by="HOUSING"),
    lambda at: contact("missed", at),
    lambda at: transition("cancelled", "MENTAL_HEALTH_DISCHARGE", at, by="MENTAL_HEALTH"),
    lambda at: referral("made", "HOUSING", at, sla=2),
    lambda at: referral("acknowledged", "HOUSING", at),
    lambda at: transition("occurred", "PRISON_RELEASE", at, reason="RELEASED",
                          accommodation="NO_FIXED_ABODE"),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BUILDERS) - 1), st.integers(0, 200),
                          st.integers(0, 30)), max_size=12))
def test_the_trace_reports_exactly_the_engines_decisions(steps: list[tuple[int, int, int]]
                                                         ) -> None:
    """Whatever the events and their arrival order, every expectation the engine holds at
    the end has, in the trace, the same status, raise and closing reason."""
    events = [dataclasses.replace(e, recorded_at=e.recorded_at + delay * H)
              for e, delay in ((_BUILDERS[i](T0 + h * H), delay) for i, h, delay in steps)]
    person = Person(PERSON, worker_clock=True)
    person.apply(*events)
    at = max([T0, *(e.recorded_at for e in events)]) + 100 * H
    person.tick(at)
    found = trace(PACK, PERSON, events, at)
    traced = {x.expectation.expectation_id: x.expectation
              for r in found.rules for x in r.expectations}
    for e in person.state.expectations:
        assert traced[e.expectation_id] == e
