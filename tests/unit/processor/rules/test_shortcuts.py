"""The engine's shortcuts change nothing: events no rule is concerned with leave the state as it
was (the same object), and over any history the indexed evaluation gives exactly the outcomes
of trying every matcher of every rule (``apply_event_to_every_rule``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.events import AgencyEvent
from services.processor.domain.rules import PersonRuleState, apply_event
from services.processor.domain.rules.engine import apply_event_to_every_rule
from tests.unit.processor.rules.helpers import (
    PACK,
    T0,
    H,
    Person,
    contact,
    discharge,
    transition,
)
from tests.unit.processor.rules.test_live_versus_replay import PEOPLE, build


def test_the_pack_indexes_rules_by_the_event_types_they_read() -> None:
    assert PACK.interested_in("contact.missed") == ()
    assert PACK.interested_in("discharge.completed") == ()
    cancelled = PACK.interested_in("transition.cancelled")
    assert [i.rule.id for i in cancelled] == [
        r.id for r in PACK.rules if r.cancel is not None
        and "transition.cancelled" in r.cancel.event_types]
    assert all(i.trigger is None and i.expect is None and i.cancel is not None
               for i in cancelled)


def test_an_event_no_rule_reads_returns_the_same_state_and_no_changes() -> None:
    person = Person()
    person.apply(transition("occurred", "MENTAL_HEALTH_DISCHARGE", by="MENTAL_HEALTH"))
    before = person.state
    for event in (contact("missed", T0 + H), discharge("completed", T0 + 2 * H),
                  contact("attended", T0 + 3 * H, by="HOUSING")):  # a type read, no match
        outcome = apply_event(PACK, before, event, event.recorded_at)
        assert outcome.state is before
        assert (outcome.changed_expectations, outcome.new_markers, outcome.alert_events,
                outcome.pruned_markers) == ([], [], [], [])


def test_an_unconcerning_event_after_a_deadline_still_fires_it() -> None:
    person = Person()
    person.apply(transition("occurred", "MENTAL_HEALTH_DISCHARGE", by="MENTAL_HEALTH"))
    alerts = person.apply(contact("missed", T0 + 80 * H))
    assert {(a.rule_id, a.at) for a in alerts} == {("mh-care-plan-24h", T0 + 24 * H),
                                                   ("mh-72h-follow-up", T0 + 72 * H)}


def test_an_unconcerning_event_prunes_what_aged_out() -> None:
    person = Person()
    person.apply(contact("attended", T0))  # remembered: a follow-up may precede its discharge
    assert person.state.markers
    outcome = apply_event(PACK, person.state, later := contact("missed", T0 + 400 * 24 * H),
                          later.recorded_at)
    assert outcome.state.markers == ()
    assert outcome.pruned_markers == list(person.state.markers)


def unconcerning(choice: int, n: int, nhs: str, at_h: int) -> AgencyEvent:
    """An event the pack has no rule for, or none whose conditions it meets."""
    at, eid = T0 + at_h * H, str(uuid.uuid5(uuid.NAMESPACE_OID, f"u{n}"))
    makers = [
        lambda: contact("missed", at, nhs=nhs, event_id=eid),
        lambda: contact("attended", at, by="HOUSING", nhs=nhs, event_id=eid),
        lambda: discharge("completed", at, nhs=nhs, event_id=eid),
        lambda: contact("follow_up", at, by="PROBATION", nhs=nhs, event_id=eid),
        lambda: transition("scheduled", "HOSPITAL_DISCHARGE", at, by="ACUTE_HOSPITAL", nhs=nhs,
                           event_id=eid),
    ]
    return makers[choice % len(makers)]()


step = st.one_of(
    st.tuples(st.integers(0, 12), st.integers(0, 1), st.integers(0, 2400), st.integers(0, 120),
              st.integers(0, 7), st.booleans()).map(lambda s: ("pack", s)),
    st.tuples(st.integers(0, 4), st.integers(0, 1), st.integers(0, 9000)).map(
        lambda s: ("other", s)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40), st.integers(0, 500))
def test_indexed_evaluation_equals_evaluating_every_rule(steps, lag_h) -> None:  # type: ignore[no-untyped-def]
    states = {nhs: PersonRuleState(f"nhs_number:{nhs}") for nhs in PEOPLE}
    clock = datetime.min.replace(tzinfo=UTC)
    for n, (family, values) in enumerate(steps):
        if family == "pack":
            choice, who, at_h, delay_h, pick, flag = values
            event = build(choice, n, PEOPLE[who], at_h, delay_h, pick, flag)
        else:
            choice, who, at_h = values
            event = unconcerning(choice, n, PEOPLE[who], at_h)
        clock = max(clock, event.recorded_at + timedelta(hours=lag_h if n % 3 == 0 else 0))
        key = event.identifiers[0].value
        fast = apply_event(PACK, states[key], event, clock)
        reference = apply_event_to_every_rule(PACK, states[key], event, clock)
        assert fast == reference
        states[key] = fast.state


def test_the_unconcerning_events_here_concern_no_rule() -> None:
    state = PersonRuleState(f"nhs_number:{PEOPLE[0]}")
    for choice in range(5):
        event = unconcerning(choice, choice, PEOPLE[0], 1)
        assert apply_event(PACK, state, event, event.recorded_at).state is state
