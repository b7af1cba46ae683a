"""Deadlines opened by an onboarding agency's history are held (services/processor/domain/backfill.py):
no later event and no timer judges them until the backfill is finished and they are
released; a matching event meets them meanwhile as any other."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.alerts.events import AlertEvent
from services.common.events import AgencyEvent
from services.processor.domain.rules import PersonRuleState, apply_event, fire_due
from services.processor.domain.rules.deadlines import released
from services.processor.domain.rules.state import OPEN
from tests.unit.processor.rules.helpers import AGENCY, NHS, PACK, T0, D, H, contact, transition

RULE = "mh-72h-follow-up"
JOINING = AGENCY["MENTAL_HEALTH"]


def fold(events: list[tuple[AgencyEvent, str | None]], state: PersonRuleState | None = None
         ) -> tuple[PersonRuleState, list[AlertEvent]]:
    """Apply in order, each at its own recorded-at (as the worker does), with its history."""
    state = state or PersonRuleState(f"nhs_number:{NHS}")
    alerts: list[AlertEvent] = []
    for event, history_of in events:
        outcome = apply_event(PACK, state, event, event.recorded_at, history_of)
        state, alerts = outcome.state, alerts + outcome.alert_events
    return state, alerts


def discharged() -> AgencyEvent:
    return transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH")


def test_history_opens_held_deadlines_that_later_events_and_the_timer_leave_alone() -> None:
    later = contact("care_plan_shared", T0 + 200 * D, by="PROBATION")  # no rule's fulfilment
    state, alerts = fold([(discharged(), JOINING), (later, None)])
    assert alerts == []
    held = [e for e in state.expectations if e.rule_id == RULE]
    assert [(e.status, e.history_of) for e in held] == [(OPEN, JOINING)]
    assert fire_due(PACK, state.expectations, T0 + 365 * D) == []


def test_a_held_deadline_is_met_by_an_on_time_event_that_arrives_later() -> None:
    state, alerts = fold([(discharged(), JOINING),
                          (contact("care_plan_shared", T0 + H, by="PROBATION"), None),
                          (contact("follow_up", T0 + 48 * H), JOINING)])
    assert [a for a in alerts if a.rule_id == RULE] == []
    assert [e.status for e in state.expectations if e.rule_id == RULE] == ["fulfilled"]


@given(st.integers(min_value=73, max_value=24 * 365))
def test_released_it_is_raised_at_its_deadline_as_live_would_have(hours: int) -> None:
    state, _ = fold([(discharged(), JOINING)])
    now = T0 + hours * H
    free = [released(e) for e in state.expectations]
    [(expectation, alert)] = [f for f in fire_due(PACK, free, now) if f[0].rule_id == RULE]
    assert expectation.history_of is None
    assert (alert.action, alert.at) == ("raised", T0 + 72 * H)
    live, _ = fold([(discharged(), None)])  # the same fact applied live, for comparison
    [(_, as_live)] = [f for f in fire_due(PACK, live.expectations, now) if f[0].rule_id == RULE]
    assert (as_live.at, as_live.rule_id) == (alert.at, alert.rule_id)


def test_a_live_event_opens_nothing_held() -> None:
    state, _ = fold([(discharged(), None)])
    assert {e.history_of for e in state.expectations} == {None}
