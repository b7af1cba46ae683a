"""Engine plumbing: the timer interface, bounded state, markers without free text, explain."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

from services.common.jsonable import from_jsonable, to_jsonable
from services.processor.domain.rules import apply_event, explain, fire_due
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


def test_fire_due_fires_only_open_expectations_past_their_deadline() -> None:
    person = Person()
    person.apply(transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH"))
    expectations = person.state.expectations
    assert fire_due(PACK, expectations, T0 + 24 * H) == []  # nothing past due yet
    fired = fire_due(PACK, expectations, T0 + 100 * H)
    assert {e.rule_id for e, _ in fired} == {RULE, "mh-care-plan-24h"}
    assert all(e.status == "alerted" and e.raised_at == a.at == e.due_at for e, a in fired)
    again = fire_due(PACK, [e for e, _ in fired], T0 + 200 * H)
    assert again == []  # an alerted expectation is never raised twice


def test_outcome_lists_each_changed_expectation_once_with_its_final_status() -> None:
    person = Person()
    person.apply(transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH"))
    outcome = apply_event(PACK, person.state, contact("follow_up", T0 + 80 * H), T0 + 80 * H)
    statuses = {e.rule_id: e.status for e in outcome.changed_expectations}
    assert statuses == {RULE: "resolved", "mh-care-plan-24h": "alerted"}
    assert len(outcome.changed_expectations) == 2
    assert [a.action for a in outcome.alert_events if a.rule_id == RULE] == ["raised", "resolved"]


def test_markers_keep_only_rule_facts_and_are_pruned_when_no_rule_needs_them() -> None:
    person = Person()
    made = dataclasses.replace(referral("made", "HOUSING", T0),
                               payload=dataclasses.replace(
                                   referral("made", "HOUSING").payload,  # type: ignore[arg-type]
                                   reason="free text that may name someone"))
    person.apply(made)
    markers = person.state.markers
    assert markers and all(m.event_id == made.event_id for m in markers)
    for marker in markers:
        assert "payload.reason" not in marker.facts and NHS not in repr(marker.attributes)
    assert {m.rule_id for m in markers} == {
        "prison-release-duty-to-refer", "hospital-discharge-nfa-housing-referral"}
    # a year and a half later, only rules with long lookbacks could need it: none here does
    person.apply(contact("attended", T0 + 600 * D))
    assert all(m.event_id != made.event_id for m in person.state.markers)
    pruned = {m.event_id for o in person.outcomes for m in o.pruned_markers}
    assert made.event_id in pruned


def test_closed_expectations_are_dropped_after_the_horizon_but_open_ones_stay() -> None:
    person = Person()
    person.apply(transition("scheduled", "PRISON_RELEASE", T0, tid="far",
                            scheduled_for=date(2028, 1, 1)),
                 transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH"),
                 contact("follow_up", T0 + H), contact("care_plan_shared", T0 + H),
                 referral("made", "SUBSTANCE_USE", T0 + 2 * H))
    statuses = {e.rule_id: e.status for e in person.state.expectations}
    assert statuses == {"prison-release-duty-to-refer": "open", RULE: "fulfilled",
                        "mh-care-plan-24h": "fulfilled", "referral-answer-sla": "open"}
    person.apply(contact("attended", T0 + 400 * D))  # the SLA alert is now over a year old
    statuses = {e.rule_id: e.status for e in person.state.expectations}
    assert statuses == {"prison-release-duty-to-refer": "open", RULE: "fulfilled",
                        "mh-care-plan-24h": "fulfilled"}
    assert PACK.horizon == 423 * D  # leaving care: 365d lookback + 28d window + 30d grace
    person.apply(contact("attended", T0 + 427 * D))  # due 3 days after T0, plus horizon
    assert [e.rule_id for e in person.state.expectations] == ["prison-release-duty-to-refer"]


def test_explain_says_why_a_rule_did_or_did_not_fire() -> None:
    person = Person()
    person.apply(transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH"),
                 contact("follow_up", T0 + 80 * H))
    [text] = explain(PACK, person.state, RULE)
    assert "alert raised, then resolved" in text and "resolved late" in text
    assert "due 2026-03-05 09:00 UTC" in text
    [silent] = explain(PACK, person.state, "stuck-between-services")
    assert "did not fire" in silent
    assert len(explain(PACK, person.state)) == len(PACK.rules)
    assert explain(PACK, person.state, "nope") == ["no rule 'nope' in rule pack 2026.12.1"]


def test_state_survives_the_jsonb_round_trip_the_store_uses() -> None:
    person = Person()
    person.apply(transition("occurred", "PRISON_RELEASE", T0, reason="RELEASED",
                            accommodation="SETTLED", treated=True),
                 referral("made", "HOUSING", T0 + H, sla=3),
                 contact("attended", T0 + D, by="SUBSTANCE_USE"))
    assert person.state.expectations and person.state.markers
    for item in (*person.state.expectations, *person.state.markers):
        back = from_jsonable(type(item), json.loads(json.dumps(to_jsonable(item))))
        assert back == item
