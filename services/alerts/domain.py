"""An alert as a duty team sees it, and the one fold that turns alert events into it.

Pure: plain data in and out, no database. The fold has the read models' one signature,
``(state, event) -> (new state, changes)``: the alert (``None`` before it is raised) and an
alert event in, the alert after it and the rows to write (the alert again when it changed).
One handler per action, found in ``_HANDLERS``. Every event folded into an alert counts in
its ``version``: a duty team's action names the version it saw, and loses if another came
first (compare-and-set, ``services/alerts/desk.py``).

A duty team's actions and the rules' changes reach the alerts topic from two processes, so a
rebuild may meet them in another order than they were decided in. The handlers make that
harmless: work on an alert that is resolved (acknowledge, snooze, wake, escalate) changes
nothing but the history, and a resolution stands until a ``reopened``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.alerts.events import AlertEvent


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    person_key: str
    rule_id: str
    rule_version: str
    severity: str
    duty_team: str
    title: str
    explanation: str
    source_reference: str
    trigger_event_id: str
    expected: str
    window_start: datetime
    due_at: datetime | None
    status: str                       # open, acknowledged, snoozed, resolved
    raised_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None
    resolving_event_id: str | None = None
    evidence_count: int = 0           # later events that joined it (stuck between services)
    last_evidence_at: datetime | None = None
    version: int = 1                  # alert events folded into it (compare-and-set)
    team_id: str | None = None        # the team working it now (None: not yet routed)
    tier: int = 1                     # 1: the routed team; each escalation one more
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    assignee: str | None = None
    snoozed_until: datetime | None = None
    area: str | None = None           # where the trigger happened (a panel's area)

    @property
    def working(self) -> bool:
        """Still to be worked (not resolved)."""
        return self.status != "resolved"


STATUSES = ("open", "acknowledged", "snoozed", "resolved")


Handler = Callable[[Alert | None, AlertEvent], Alert | None]


def _raised(alert: Alert | None, event: AlertEvent) -> Alert | None:
    return Alert(event.alert_id, event.person_key, event.rule_id, event.rule_version,
                 event.severity, event.duty_team, event.title, event.explanation,
                 event.source_reference, event.trigger_event_id, event.expected,
                 event.window_start, event.due_at, "open", event.at, version=0,
                 team_id=event.team_id, area=event.area)


def _resolved(alert: Alert | None, event: AlertEvent) -> Alert | None:
    if alert is None:  # nothing raised to resolve (its history still records the event)
        return None
    # the person too: a resolution decided as records were linked names the person now
    if alert.status == "resolved" and event.actor is not None:
        return alert  # a person's resolution of what already stands resolved changes nothing
    return dataclasses.replace(alert, status="resolved", resolved_at=event.at,
                               resolution=event.resolution,
                               resolving_event_id=event.resolving_event_id,
                               person_key=event.person_key, snoozed_until=None)


def _evidence(alert: Alert | None, event: AlertEvent) -> Alert | None:
    if alert is None:
        return None
    latest = event.at if alert.last_evidence_at is None else max(alert.last_evidence_at,
                                                                 event.at)
    return dataclasses.replace(alert, evidence_count=alert.evidence_count + 1,
                               last_evidence_at=latest)


def _moved(alert: Alert | None, event: AlertEvent) -> Alert | None:
    """Records were linked or separated: the alert belongs to ``event.person_key`` now."""
    if alert is None:
        return None
    return dataclasses.replace(alert, person_key=event.person_key)


def _reopened(alert: Alert | None, event: AlertEvent) -> Alert | None:
    """What had resolved it no longer stands (records it relied on were separated)."""
    if alert is None:
        return None
    return dataclasses.replace(alert, status="open", resolved_at=None, resolution=None,
                               resolving_event_id=None, person_key=event.person_key,
                               acknowledged_at=None, acknowledged_by=None)


def _working(change: Callable[[Alert, AlertEvent], Alert]) -> Handler:
    """A duty team's work: on an alert being worked; a resolved one keeps its state."""
    def handler(alert: Alert | None, event: AlertEvent) -> Alert | None:
        if alert is None or not alert.working:
            return alert
        return change(alert, event)
    return handler


def _acknowledged(alert: Alert, event: AlertEvent) -> Alert:
    return dataclasses.replace(alert, status="acknowledged", acknowledged_at=event.at,
                               acknowledged_by=event.actor, snoozed_until=None)


def _assigned(alert: Alert, event: AlertEvent) -> Alert:
    return dataclasses.replace(alert, assignee=event.assignee)


def _snoozed(alert: Alert, event: AlertEvent) -> Alert:
    return dataclasses.replace(alert, status="snoozed", snoozed_until=event.until)


def _woke(alert: Alert, event: AlertEvent) -> Alert:
    if alert.status != "snoozed":
        return alert
    return dataclasses.replace(alert, status="open", snoozed_until=None)


def _unacknowledged(alert: Alert, event: AlertEvent) -> Alert:
    """Acknowledged and left unresolved too long: back to open, for the team to see again."""
    if alert.status != "acknowledged":
        return alert
    return dataclasses.replace(alert, status="open", acknowledged_at=None,
                               acknowledged_by=None)


def _escalated(alert: Alert, event: AlertEvent) -> Alert:
    """To the next tier's team (or the fallback team): open for them, nobody assigned."""
    return dataclasses.replace(alert, status="open", team_id=event.team_id,
                               tier=event.tier or alert.tier + 1, acknowledged_at=None,
                               acknowledged_by=None, assignee=None, snoozed_until=None)


def _noted(alert: Alert | None, event: AlertEvent) -> Alert | None:
    """A comment: the history keeps it; the alert only counts it in its version."""
    return alert


_HANDLERS: Mapping[str, Handler] = {
    "raised": _raised,
    "resolved": _resolved,
    "evidence": _evidence,
    "moved": _moved,
    "reopened": _reopened,
    "acknowledged": _working(_acknowledged),
    "assigned": _working(_assigned),
    "snoozed": _working(_snoozed),
    "woke": _working(_woke),
    "unacknowledged": _working(_unacknowledged),
    "escalated": _working(_escalated),
    "commented": _noted,
}


def apply_alert_event(alert: Alert | None, event: AlertEvent
                      ) -> tuple[Alert | None, Sequence[Alert]]:
    """The alert after ``event``, and what to write (nothing when it did not change)."""
    if event.action == "raised" and alert is not None:
        return alert, []  # raised once: its id is the rule and trigger
    handler = _HANDLERS.get(event.action)
    after = alert if handler is None else handler(alert, event)
    if after is not None:  # every event folded into an alert is a version of it
        after = dataclasses.replace(after, version=after.version + 1)
    return after, ([after] if after is not None else [])


@dataclass(frozen=True, slots=True)
class Step:
    """One alert event folded: the alert before and after it (None: no alert raised yet)."""

    event: AlertEvent
    before: Alert | None
    after: Alert | None


def fold_alert_steps(alerts: dict[str, Alert | None], events: Iterable[AlertEvent]
                     ) -> list[Step]:
    """Fold ``events`` (each applied once) into ``alerts`` by alert id, in place, one step
    each. An alert's raise is folded before anything else that came with it, whatever order
    they arrived in: a raise always begins an alert's life, and a resolution that reached
    the read model first must still find it."""
    events = list(events)
    steps: list[Step] = []
    for event in [e for e in events if e.action == "raised"] + [
            e for e in events if e.action != "raised"]:
        before = alerts.get(event.alert_id)
        alerts[event.alert_id], _ = apply_alert_event(before, event)
        steps.append(Step(event, before, alerts[event.alert_id]))
    return steps


def fold_alert_events(alerts: dict[str, Alert | None], events: Iterable[AlertEvent]
                      ) -> list[Alert]:
    """Fold ``events`` into ``alerts`` in place (``fold_alert_steps``); returns the alerts
    to write, the last state of each."""
    changed: dict[str, Alert] = {}
    for step in fold_alert_steps(alerts, events):
        if step.after is not None and step.after != step.before:
            changed[step.after.alert_id] = step.after
    return list(changed.values())
