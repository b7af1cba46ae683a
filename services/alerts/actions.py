"""A duty team's actions on an alert, decided: pure, over the alert as it stands.

Each action names the alert version it was based on. ``decide`` answers the alert event the
action makes, or a ``Refusal`` saying why not: a version that is not the alert's current one
is a conflict (somebody else acted first; the caller gets the alert as it is now and decides
again), as is work on an alert already resolved. The event's id is the alert and the version
(``action_event_id_for``): one action can follow each version, and a request repeated
after a lost answer is the same event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from services.alerts.domain import Alert
from services.alerts.events import AlertEvent, action_event_id_for

#: how a person may close an alert (the outcome its history and the panel report)
OUTCOMES: Final = {
    "referral-made": "a referral was made",
    "contact-made": "the person was contacted",
    "accommodation-secured": "accommodation was secured",
    "follow-up-arranged": "a follow-up was arranged",
    "handed-over": "handed over to another service",
    "not-needed": "no action needed (already in hand elsewhere)",
    "could-not-contact": "the person could not be contacted",
    "duplicate": "a duplicate of another alert",
}
MAX_COMMENT: Final = 4000
MAX_SNOOZE: Final = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Acknowledge:
    version: int


@dataclass(frozen=True, slots=True)
class Assign:
    version: int
    assignee: str | None          # a member's username; None unassigns


@dataclass(frozen=True, slots=True)
class Comment:
    version: int
    text: str


@dataclass(frozen=True, slots=True)
class Snooze:
    version: int
    until: datetime


@dataclass(frozen=True, slots=True)
class Resolve:
    version: int
    outcome: str
    note: str | None = None


Action = Acknowledge | Assign | Comment | Snooze | Resolve


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str        # conflict (409) or invalid (422)
    reason: str      # safe to show: never a value the caller sent


def decide(alert: Alert, action: Action, actor: str, now: datetime
           ) -> AlertEvent | Refusal:
    """The alert event ``action`` makes on ``alert`` at ``now``, or why it may not."""
    if action.version != alert.version:
        return Refusal("conflict", f"the alert changed: it is at version {alert.version}, "
                                   f"the action was based on version {action.version}")
    if not alert.working:
        return Refusal("conflict", "the alert is resolved")
    match action:
        case Acknowledge():
            if alert.status == "acknowledged":
                return Refusal("conflict", "the alert is acknowledged already")
            return _event(alert, "acknowledged", actor, now)
        case Assign(assignee=assignee):
            if assignee == alert.assignee:
                return Refusal("conflict", "the alert is assigned to that member already")
            return _event(alert, "assigned", actor, now, assignee=assignee)
        case Comment(text=text):
            if not text.strip() or len(text) > MAX_COMMENT:
                return Refusal("invalid", f"a comment has 1 to {MAX_COMMENT} characters")
            return _event(alert, "commented", actor, now, comment=text)
        case Snooze(until=until):
            if until.tzinfo is None:
                return Refusal("invalid", "give the time with its zone")
            if not now < until <= now + MAX_SNOOZE:
                return Refusal("invalid", "snooze until a time in the next 30 days")
            return _event(alert, "snoozed", actor, now, until=until)
        case Resolve(outcome=outcome, note=note):
            if outcome not in OUTCOMES:
                return Refusal("invalid", "unknown outcome (known: " + ", ".join(OUTCOMES) + ")")
            if note is not None and len(note) > MAX_COMMENT:
                return Refusal("invalid", f"a note has at most {MAX_COMMENT} characters")
            return _event(alert, "resolved", actor, now, resolution=outcome,
                          comment=note or None)
    raise TypeError(f"not an action: {type(action).__name__}")


def timer_event(alert: Alert, action: str, now: datetime, *, team_id: str | None = None,
                tier: int | None = None, detail: str | None = None) -> AlertEvent:
    """What a wall-clock timer makes (escalated, unacknowledged, woke): an action by the
    duty service, on the version the timer was set at."""
    return _event(alert, action, "duty-service", now, team_id=team_id, tier=tier,
                  detail=detail)


def recorded_event(alert: Alert, alert_event_id: str, action: str, at: datetime,
                   actor: str | None, **fields: object) -> AlertEvent:
    """An action as the alert history recorded it, as an alert event again (a rebuild
    carries the duty teams' work over to the rebuilt alerts: it is not in the archive)."""
    return dataclasses.replace(_event(alert, action, actor or "", at, **fields),
                               alert_event_id=alert_event_id, actor=actor)


def _event(alert: Alert, action: str, actor: str, now: datetime, **fields: object
           ) -> AlertEvent:
    base = AlertEvent(
        alert_event_id=action_event_id_for(alert.alert_id, alert.version),
        alert_id=alert.alert_id, action=action, at=now, person_key=alert.person_key,
        rule_id=alert.rule_id, rule_version=alert.rule_version, severity=alert.severity,
        duty_team=alert.duty_team, title=alert.title, explanation=alert.explanation,
        source_reference=alert.source_reference, trigger_event_id=alert.trigger_event_id,
        expected=alert.expected, window_start=alert.window_start, due_at=alert.due_at,
        actor=actor, version=alert.version, area=alert.area)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]
