"""One person's read models folded in memory (``person_fold.py``): the view at a moment and
the comparison with live rows, without a database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.operations.person_fold import as_of, differences, fold_person
from services.processor.read_models import read_models
from services.processor.rules_stage import RuleStage
from tests.unit.processor.rules.helpers import PACK, T0, H, contact, referral, transition

PERSON = "9d0f8f5e-0000-4000-8000-000000000001"
RULE = "mh-72h-follow-up"
PLAN = "mh-care-plan-24h"


def history() -> list:  # type: ignore[type-arg]
    events = [transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH"),
              referral("made", "HOUSING", T0 + H, rid="r-9", sla=5, by="MENTAL_HEALTH"),
              contact("missed", T0 + 10 * H)]
    return [e.for_person(PERSON) for e in events]


def folded(at: datetime):  # type: ignore[no-untyped-def]
    return fold_person(read_models(RuleStage(PACK)), PACK, PERSON, history(), at)


def test_deadlines_are_judged_at_t_and_duty_actions_after_t_are_not_applied() -> None:
    at = T0 + 30 * H
    fold = folded(at)
    plan = next(e for e in fold.expectations if e.rule_id == PLAN)
    duty = [{"alert_id": plan.expectation_id, "action": "acknowledged", "at": T0 + 25 * H,
             "actor": "duty"}]
    view = as_of(fold, at, duty)
    assert view["events"] == 3 and len(view["timeline"]) == 3
    assert [x["rule_id"] for x in view["open_expectations"]] == [RULE, "referral-answer-sla"]
    [alert] = view["alerts"]
    assert (alert["rule_id"], alert["raised_at"], alert["status"]) == (
        PLAN, T0 + 24 * H, "acknowledged")
    assert [r["referral_id"] for r in view["referrals"]] == ["r-9"]
    assert "reason" not in view["referrals"][0] and "outcome" not in view["referrals"][0]
    earlier = as_of(folded(T0 + 20 * H), T0 + 20 * H, [])
    assert earlier["alerts"] == []  # the care plan was not yet due


def _live(fold: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "timeline": [{"source_agency": t.source_agency, "event_id": t.event_id,
                      "event_type": t.event_type, "summary": t.summary} for t in fold.timeline],
        "caseload": [{"agency": c.agency, "service_kind": c.service_kind, "active": c.active,
                      "ended_reason": c.ended_reason} for c in fold.caseload],
        "referrals": [{"referral_id": r.referral_id, "status": r.status,
                       "status_at": r.status_at} for r in fold.referrals],
        "rules": [{"expectation_id": e.expectation_id, "rule_id": e.rule_id,
                   "status": e.status} for e in fold.expectations],
    }


def test_the_replay_agrees_with_equal_live_rows_and_names_what_differs() -> None:
    fold = folded(T0 + 10 * H)  # the person's own clock: nothing fired by a timer yet
    live = _live(fold)
    assert differences(fold, live, T0 + 10 * H) == []
    gone = live["timeline"].pop()
    [d] = differences(fold, live, T0 + 10 * H)
    assert (d.read_model, d.key, d.live) == ("timeline",
                                             f"{gone['source_agency']}/{gone['event_id']}",
                                             None)


def test_an_alert_the_timer_fired_since_is_no_difference_but_an_early_one_is() -> None:
    fold = folded(T0 + 10 * H)
    live = _live(fold)
    plan = next(r for r in live["rules"] if r["rule_id"] == PLAN)
    plan["status"] = "alerted"
    assert differences(fold, live, T0 + 30 * H) == []  # due at 24 h: the timer fired it
    [d] = differences(fold, live, T0 + 20 * H)          # not due yet: live is wrong
    assert (d.read_model, d.live, d.replayed) == ("rules", f"{PLAN} alerted", f"{PLAN} open")
