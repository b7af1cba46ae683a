"""72-hour follow-up (NHS Standard Contract) and care plan within 24 h (NICE QS159)."""

from __future__ import annotations

import pytest

from tests.unit.processor.rules.helpers import AREA, NHS, T0, D, H, M, Person, contact, transition

RULE = "mh-72h-follow-up"
PLAN = "mh-care-plan-24h"


def discharged(**kw: object):  # type: ignore[no-untyped-def]
    return transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH", **kw)


def test_no_follow_up_raises_at_exactly_72_hours_even_with_no_further_events() -> None:
    person = Person()
    trigger = discharged()
    person.apply(trigger)
    assert [a for a in person.tick(T0 + 72 * H) if a.rule_id == RULE] == []  # not yet passed
    fired = person.tick(T0 + 80 * H)
    [alert] = [a for a in fired if a.rule_id == RULE]
    assert (alert.action, alert.at, alert.due_at) == ("raised", T0 + 72 * H, T0 + 72 * H)
    assert alert.window_start == T0 and alert.trigger_event_id == trigger.event_id
    assert alert.duty_team == f"mental-health:{AREA}" and alert.severity == "critical"
    assert "NHS Standard Contract" in alert.source_reference
    assert "contact.follow_up" in alert.expected
    text = alert.title + alert.explanation
    assert "MENTAL_HEALTH_DISCHARGE" in text and "mh-72h-follow-up" in text
    assert "2026-03-05 09:00 UTC" in alert.explanation  # the deadline, in words
    assert NHS not in text and alert.person_key == f"nhs_number:{NHS}"


@pytest.mark.parametrize(("after", "alerts"), [
    (71 * H + 59 * M, 0), (72 * H, 0), (72 * H + M, 1),
])
def test_72_hour_boundary(after, alerts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(discharged(), contact("follow_up", T0 + after))
    person.tick(T0 + 30 * D)
    assert len(person.of(RULE, "raised")) == alerts
    [expectation] = person.expectations(RULE)
    assert expectation.status == ("fulfilled" if alerts == 0 else "resolved")


def test_a_late_follow_up_resolves_the_alert_with_the_reason() -> None:
    person = Person()
    person.apply(discharged())
    person.tick(T0 + 73 * H)
    follow_up = contact("attended", T0 + 80 * H)
    [resolved] = [a for a in person.apply(follow_up) if a.rule_id == RULE]
    [raised] = person.of(RULE, "raised")
    assert resolved.action == "resolved" and resolved.alert_id == raised.alert_id
    assert resolved.alert_event_id != raised.alert_event_id
    assert resolved.resolving_event_id == follow_up.event_id and resolved.at == T0 + 80 * H
    assert resolved.resolution is not None
    assert resolved.resolution.startswith("resolved late: contact.attended")
    assert "8 hours after the deadline" in resolved.resolution


def test_follow_up_in_time_but_reported_after_the_alert() -> None:
    person = Person()
    person.apply(discharged())
    person.tick(T0 + 75 * H)
    person.apply(contact("follow_up", T0 + 70 * H, delay=10 * H))
    [resolved] = person.of(RULE, "resolved")
    assert resolved.resolution is not None
    assert resolved.resolution.startswith("fulfilled before the deadline but reported late")


def test_late_report_without_a_timer_gives_the_same_alerts_as_with_one() -> None:
    live, replay = Person(), Person()
    events = [discharged(), contact("follow_up", T0 + 70 * H, delay=10 * H)]
    live.apply(events[0])
    live.tick(T0 + 75 * H)
    live.apply(events[1])
    replay.apply(*events)
    key = [(a.alert_event_id, a.action, a.at) for a in live.of(RULE)]
    assert key == [(a.alert_event_id, a.action, a.at) for a in replay.of(RULE)]
    assert [a for _, a, _ in key] == ["raised", "resolved"]


def test_only_a_mental_health_contact_after_discharge_counts() -> None:
    person = Person()
    person.apply(contact("follow_up", T0 - H), discharged(),
                 contact("follow_up", T0 + 2 * H, by="HOUSING"),
                 contact("missed", T0 + 3 * H))
    person.tick(T0 + 73 * H)
    assert len(person.of(RULE, "raised")) == 1


def test_follow_up_recorded_before_the_discharge_arrives_is_honoured() -> None:
    person = Person()
    follow_up = contact("follow_up", T0 + 10 * H, delay=H)
    person.apply(follow_up, discharged(delay=20 * H))  # the ward's record came in late
    person.tick(T0 + 30 * D)
    assert person.of(RULE) == []
    [expectation] = person.expectations(RULE)
    assert (expectation.status, expectation.fulfilled_by) == ("fulfilled", follow_up.event_id)


def test_discharge_recorded_after_its_deadline_alerts_at_once_at_the_recording_time() -> None:
    person = Person()
    person.apply(discharged(delay=100 * H))
    [alert] = person.of(RULE, "raised")
    assert alert.at == T0 + 100 * H and alert.due_at == T0 + 72 * H


def test_duplicated_discharge_changes_nothing() -> None:
    person = Person()
    trigger = discharged()
    person.apply(trigger, contact("follow_up", T0 + H))
    before = person.state
    person.apply(trigger)
    assert person.outcomes[-1].alert_events == []
    assert person.outcomes[-1].changed_expectations == []
    assert person.outcomes[-1].new_markers == []
    assert person.state == before
    person.tick(T0 + 30 * D)
    assert person.of(RULE) == []


def test_cancelled_discharge_withdraws_and_resolves_a_raised_alert() -> None:
    person = Person()
    person.apply(discharged(tid="t-9"), transition("cancelled", "MENTAL_HEALTH_DISCHARGE",
                                                   T0 + H, tid="t-9", by="MENTAL_HEALTH"))
    person.tick(T0 + 30 * D)
    assert person.of(RULE) == [] and person.expectations(RULE)[0].status == "withdrawn"

    late = Person()
    late.apply(discharged(tid="t-9"))
    late.tick(T0 + 73 * H)
    late.apply(transition("cancelled", "MENTAL_HEALTH_DISCHARGE", T0 + 74 * H, tid="t-9",
                          by="MENTAL_HEALTH"))
    [resolved] = late.of(RULE, "resolved")
    assert resolved.resolution is not None and resolved.resolution.startswith("withdrawn")
    assert late.expectations(RULE)[0].status == "withdrawn"


def test_cancelling_another_transition_changes_nothing() -> None:
    person = Person()
    person.apply(discharged(tid="t-1"), transition("cancelled", "MENTAL_HEALTH_DISCHARGE",
                                                   T0 + H, tid="t-2", by="MENTAL_HEALTH"))
    person.tick(T0 + 73 * H)
    assert len(person.of(RULE, "raised")) == 1


@pytest.mark.parametrize(("shared_at", "alerts"), [
    (-71 * H, 0), (-73 * H, 1), (23 * H + 59 * M, 0), (24 * H + M, 1),
])
def test_care_plan_within_24_hours_with_a_72_hour_lookback(shared_at, alerts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    plan = contact("care_plan_shared", T0 + shared_at)
    person.apply(*sorted([plan, discharged()], key=lambda e: e.recorded_at))
    person.tick(T0 + 10 * D)
    assert len(person.of(PLAN, "raised")) == alerts
    if alerts:
        [alert] = person.of(PLAN, "raised")
        assert alert.at == T0 + 24 * H and "QS159" in alert.source_reference
