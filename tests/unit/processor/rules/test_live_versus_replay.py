"""Property: live processing (timers firing at arbitrary moments between events) and a replay
(no timer at all, one final sweep) raise exactly the same alert events, ids and times.

This is the guarantee that lets the timer be a mere trigger: deadlines are computed from event
time, a deadline alert is raised "at" its deadline whoever notices it, and every event first
fires what was already due before it is applied.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.events import AgencyEvent
from tests.unit.processor.rules.helpers import T0, H, Person, contact, discharge, referral, transition

PEOPLE = ("9434765919", "4010232137")
KINDS = ("MENTAL_HEALTH", "SUBSTANCE_USE", "HOUSING")


def build(choice: int, n: int, nhs: str, at_h: int, delay_h: int, pick: int, flag: bool
          ) -> AgencyEvent:
    """One event of the kinds the pack cares about; small id spaces make them interact."""
    at, delay = T0 + at_h * H, timedelta(hours=delay_h)
    kw = {"nhs": nhs, "delay": delay, "event_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"e{n}"))}
    tid, rid = f"t-{pick % 2}", f"r-{pick % 3}"
    kind = KINDS[pick % 3]
    makers = [
        lambda: transition("occurred", "MENTAL_HEALTH_DISCHARGE", at, tid=tid, by="MENTAL_HEALTH",
                           accommodation="NO_FIXED_ABODE" if flag else "SETTLED", **kw),
        lambda: contact("follow_up" if flag else "care_plan_shared", at, **kw),
        lambda: contact("attended", at, by="SUBSTANCE_USE", **kw),
        lambda: transition("occurred", "PRISON_RELEASE", at, tid=tid,
                           reason="RELEASED" if pick % 4 else "TEMPORARY_ABSENCE_RELEASE",
                           accommodation="NO_FIXED_ABODE" if flag else "SETTLED",
                           treated=pick % 2 == 0, **kw),
        lambda: transition("scheduled", "PRISON_RELEASE", at, tid=tid,
                           scheduled_for=date(2026, 4, 1) + timedelta(days=7 * pick), **kw),
        lambda: transition("cancelled", "PRISON_RELEASE", at, tid=tid, **kw),
        lambda: referral("made", "HOUSING" if flag else "SOCIAL_CARE", at, rid=rid,
                         sla=pick % 4 or None, **kw),
        lambda: referral("acknowledged" if flag else "withdrawn", "HOUSING", at, rid=rid,
                         by="HOUSING", **kw),
        lambda: referral("declined", kind, at, rid=rid, by=kind, cites=KINDS[(pick + 1) % 3]
                         if flag else KINDS[(pick + 2) % 3],
                         decline_reason="CITES_OTHER_NEED_FIRST", **kw),
        lambda: referral("accepted", "MARAC", at, rid="marac", by="MARAC", **kw),
        lambda: discharge("disengaged", at, **kw),
        lambda: transition("occurred", "LEAVING_CARE", at, tid=tid, by="SOCIAL_CARE", **kw),
        lambda: transition("occurred", "LEAD_PROFESSIONAL_CHANGE", at, tid=tid, by="PROBATION",
                           team=f"team-{pick}", **kw),
    ]
    return makers[choice % len(makers)]()


step = st.tuples(st.integers(0, 12), st.integers(0, 1), st.integers(0, 2400), st.integers(0, 120),
                 st.integers(0, 7), st.booleans(),
                 st.none() | st.floats(0, 1),   # a timer tick before this event, if any
                 st.booleans())                 # delivered twice (at-least-once)
histories = st.lists(step, min_size=1, max_size=30)


def run(steps: list, live: bool) -> tuple[set, dict]:  # type: ignore[type-arg]
    people = {nhs: Person(f"nhs_number:{nhs}") for nhs in PEOPLE}
    clock = T0 - 1000 * H
    for n, (choice, who, at_h, delay_h, pick, flag, tick, twice) in enumerate(steps):
        event = build(choice, n, PEOPLE[who], at_h, delay_h, pick, flag)
        if live and tick is not None:
            now = event.recorded_at - tick * 300 * H  # any moment up to the event's recording
            for person in people.values():
                person.tick(now)
        clock = max(clock, event.recorded_at)
        for _ in range(2 if twice else 1):
            people[event.identifiers[0].value].apply(event, now=clock)
    end = clock + 1200 * 24 * H
    for person in people.values():
        person.tick(end)
    alerts = {a for person in people.values() for a in person.alerts}
    return alerts, {nhs: person.state for nhs, person in people.items()}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_live_and_replay_raise_the_same_alerts(steps) -> None:  # type: ignore[no-untyped-def]
    live_alerts, live_states = run(steps, live=True)
    replay_alerts, replay_states = run(steps, live=False)
    assert {(a.alert_event_id, a.action, a.at) for a in live_alerts} == {
        (a.alert_event_id, a.action, a.at) for a in replay_alerts}
    assert live_alerts == replay_alerts  # same text, resolution and routing too
    assert live_states == replay_states


@settings(max_examples=100, deadline=None)
@given(histories)
def test_each_alert_event_is_emitted_once_and_resolves_only_what_was_raised(steps) -> None:  # type: ignore[no-untyped-def]
    people = {nhs: Person(f"nhs_number:{nhs}") for nhs in PEOPLE}
    for n, (choice, who, at_h, delay_h, pick, flag, _, twice) in enumerate(steps):
        event = build(choice, n, PEOPLE[who], at_h, delay_h, pick, flag)
        for _ in range(2 if twice else 1):
            people[PEOPLE[who]].apply(event)
    emitted = [a for person in people.values() for a in person.alerts]
    assert len({a.alert_event_id for a in emitted}) == len(emitted)
    raised = {a.alert_id: a for a in emitted if a.action == "raised"}
    for alert in emitted:
        if alert.action == "resolved":
            assert alert.alert_id in raised and alert.at >= raised[alert.alert_id].at
            assert alert.resolution
