"""Routing, a duty team's actions and escalation timers: pure, over plain alerts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.alerts import actions
from services.alerts.actions import Refusal, decide
from services.alerts.domain import Alert, apply_alert_event
from services.alerts.escalation import KEEP, EscalationPolicy, Timer, escalation_for, timer_after
from services.alerts.events import AlertEvent, action_event_id_for
from services.alerts.routing import Routing

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
POLICY = EscalationPolicy()
ALERT = Alert("a1", "p1", "prison-release-no-settled-accommodation", "2026.12.1", "high",
              "housing:E08000035", "Released with nowhere to live", "why", "HRA 2017",
              "t1", "settled accommodation", NOW, None, "open", NOW, version=1,
              team_id="leeds-housing/options", area="E08000035")
ROUTES = Routing({"housing:E08000035": "leeds-housing/options",
                  "mental-health:*": "mh-trust/crisis", "*": "council/out-of-hours"},
                 frozenset({"leeds-housing/options", "mh-trust/crisis", "council/out-of-hours",
                            "forward-leeds/intake"}))


def test_routes_exact_then_family_then_a_named_team_then_the_fallback() -> None:
    assert ROUTES.team_for("housing:E08000035") == "leeds-housing/options"
    assert ROUTES.team_for("mental-health:E08000003") == "mh-trust/crisis"
    assert ROUTES.team_for("forward-leeds:intake") == "forward-leeds/intake"
    assert ROUTES.team_for("housing:E06000014") == "council/out-of-hours"
    assert ROUTES.team_for("lead-professional") == "council/out-of-hours"
    assert Routing({}, frozenset()).team_for("housing:E08000035") is None


@given(st.text(min_size=1, max_size=60))
def test_every_route_name_reaches_a_team_when_there_is_a_fallback(route: str) -> None:
    assert ROUTES.team_for(route) in ROUTES.teams


def fold(alert: Alert, event: AlertEvent) -> Alert:
    after, _ = apply_alert_event(alert, event)
    assert after is not None
    return after


def test_each_action_names_the_version_and_moves_the_alert_on() -> None:
    ack = decide(ALERT, actions.Acknowledge(1), "duty.officer", NOW)
    assert isinstance(ack, AlertEvent)
    assert (ack.action, ack.version, ack.alert_event_id) == (
        "acknowledged", 1, action_event_id_for("a1", 1))
    acked = fold(ALERT, ack)
    assert (acked.status, acked.acknowledged_by, acked.version) == ("acknowledged",
                                                                     "duty.officer", 2)
    snoozed = fold(acked, decide(acked, actions.Snooze(2, NOW + timedelta(hours=1)), "x", NOW))
    assert (snoozed.status, snoozed.snoozed_until) == ("snoozed", NOW + timedelta(hours=1))
    resolved = fold(snoozed, decide(snoozed, actions.Resolve(3, "contact-made"), "x", NOW))
    assert (resolved.status, resolved.resolution, resolved.snoozed_until) == (
        "resolved", "contact-made", None)


def test_a_stale_version_a_resolved_alert_and_bad_input_are_refused() -> None:
    assert decide(ALERT, actions.Acknowledge(2), "x", NOW) == Refusal(
        "conflict", "the alert changed: it is at version 1, the action was based on version 2")
    resolved = dataclasses.replace(ALERT, status="resolved")
    assert isinstance(decide(resolved, actions.Acknowledge(1), "x", NOW), Refusal)
    for bad in (actions.Comment(1, "  "), actions.Comment(1, "x" * 4001),
                actions.Snooze(1, NOW - timedelta(seconds=1)),
                actions.Snooze(1, NOW + timedelta(days=31)),
                actions.Snooze(1, datetime(2026, 12, 7, 9, 0)),
                actions.Resolve(1, "made-up")):
        refused = decide(ALERT, bad, "x", NOW)
        assert isinstance(refused, Refusal) and refused.kind == "invalid", bad


@given(st.lists(st.sampled_from(["ack", "assign", "comment", "snooze", "wake", "escalate",
                                 "unack"]), max_size=12))
def test_work_on_a_resolved_alert_changes_nothing_but_its_version(steps: list[str]) -> None:
    """Actions and the rules reach the topic from two processes: a rebuild may fold a
    person's work after the rules' resolution. The resolution stands."""
    resolved = dataclasses.replace(ALERT, status="resolved", resolution="fulfilled")
    made = {"ack": "acknowledged", "assign": "assigned", "comment": "commented",
            "snooze": "snoozed", "wake": "woke", "escalate": "escalated",
            "unack": "unacknowledged"}
    alert = resolved
    for n, step in enumerate(steps):
        event = actions.timer_event(alert, made[step], NOW, team_id="council/out-of-hours")
        alert = fold(alert, dataclasses.replace(event, alert_event_id=f"e{n}"))
    assert dataclasses.replace(alert, version=resolved.version) == resolved
    assert alert.version == resolved.version + len(steps)


def test_an_open_high_alert_escalates_after_its_wait_and_nothing_else_does() -> None:
    assert timer_after(None, ALERT, NOW, POLICY) == Timer("a1", "escalate",
                                                          NOW + timedelta(minutes=30), 1)
    medium = dataclasses.replace(ALERT, severity="medium")
    assert timer_after(None, medium, NOW, POLICY) is None
    commented = dataclasses.replace(ALERT, version=2)
    assert timer_after(ALERT, commented, NOW, POLICY) is KEEP
    acked = dataclasses.replace(ALERT, status="acknowledged", version=2)
    assert timer_after(ALERT, acked, NOW, POLICY) == Timer("a1", "acknowledgement",
                                                          NOW + timedelta(hours=4), 2)
    snoozed = dataclasses.replace(ALERT, status="snoozed", snoozed_until=NOW + timedelta(1))
    assert timer_after(ALERT, snoozed, NOW, POLICY).kind == "wake"  # type: ignore[union-attr]
    assert timer_after(ALERT, dataclasses.replace(ALERT, status="resolved"), NOW,
                       POLICY) is None
    unrouted = dataclasses.replace(ALERT, team_id=None, severity="low")
    assert timer_after(None, unrouted, NOW, POLICY) == Timer("a1", "escalate", NOW, 1)
    moved = dataclasses.replace(ALERT, team_id="leeds-housing/managers", tier=2, version=2)
    assert timer_after(ALERT, moved, NOW, POLICY) == Timer("a1", "escalate",
                                                          NOW + timedelta(minutes=30), 2)


def test_escalation_goes_up_the_tiers_then_to_the_fallback_then_stops() -> None:
    up = escalation_for(ALERT, "leeds-housing/managers", "council/out-of-hours")
    assert up is not None and (up.team_id, up.tier) == ("leeds-housing/managers", 2)
    last = escalation_for(ALERT, None, "council/out-of-hours")
    assert last is not None and (last.team_id, last.tier) == ("council/out-of-hours", 2)
    at_fallback = dataclasses.replace(ALERT, team_id="council/out-of-hours", tier=3)
    assert escalation_for(at_fallback, None, "council/out-of-hours") is None
    assert escalation_for(ALERT, None, None) is None
    unrouted = escalation_for(dataclasses.replace(ALERT, team_id=None), None, "council/ooh")
    assert unrouted is not None and (unrouted.team_id, unrouted.reason) == ("council/ooh",
                                                                             "unrouted")
