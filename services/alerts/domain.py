"""An alert as a duty team sees it, and the one fold that turns alert events into it.

Pure: plain data in and out, no database. The fold has the read models' one signature,
``(state, event) -> (new state, changes)``: the alert (``None`` before it is raised) and an
alert event in, the alert after it and the rows to write (the alert again when it changed).
One handler per action, found in ``_HANDLERS``; an action without one (acknowledged,
assigned and escalated have no producer yet) joins the alert's history and changes nothing.
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
    status: str                       # open, resolved
    raised_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None
    resolving_event_id: str | None = None
    evidence_count: int = 0           # later events that joined it (stuck between services)
    last_evidence_at: datetime | None = None


Handler = Callable[[Alert | None, AlertEvent], Alert | None]


def _raised(alert: Alert | None, event: AlertEvent) -> Alert | None:
    if alert is not None:  # raised once: its id is the rule and trigger
        return alert
    return Alert(event.alert_id, event.person_key, event.rule_id, event.rule_version,
                 event.severity, event.duty_team, event.title, event.explanation,
                 event.source_reference, event.trigger_event_id, event.expected,
                 event.window_start, event.due_at, "open", event.at)


def _resolved(alert: Alert | None, event: AlertEvent) -> Alert | None:
    if alert is None:  # nothing raised to resolve (its history still records the event)
        return None
    # the person too: a resolution decided as records were linked names the person now
    return dataclasses.replace(alert, status="resolved", resolved_at=event.at,
                               resolution=event.resolution,
                               resolving_event_id=event.resolving_event_id,
                               person_key=event.person_key)


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
                               resolving_event_id=None, person_key=event.person_key)


_HANDLERS: Mapping[str, Handler] = {
    "raised": _raised,
    "resolved": _resolved,
    "evidence": _evidence,
    "moved": _moved,
    "reopened": _reopened,
}


def apply_alert_event(alert: Alert | None, event: AlertEvent
                      ) -> tuple[Alert | None, Sequence[Alert]]:
    """The alert after ``event``, and what to write (nothing when it did not change)."""
    handler = _HANDLERS.get(event.action)
    after = alert if handler is None else handler(alert, event)
    return after, ([after] if after is not None and after != alert else [])


def fold_alert_events(alerts: dict[str, Alert | None], events: Iterable[AlertEvent]
                      ) -> list[Alert]:
    """Fold ``events`` (each applied once) into ``alerts`` by alert id, in place; returns the
    alerts to write, the last state of each. An alert's raise is folded before anything
    else that came with it, whatever order they arrived in: a raise always begins an alert's
    life, and a resolution that reached the read model first must still find it."""
    events = list(events)
    changed: dict[str, Alert] = {}
    for event in [e for e in events if e.action == "raised"] + [
            e for e in events if e.action != "raised"]:
        alerts[event.alert_id], rows = apply_alert_event(alerts.get(event.alert_id), event)
        changed.update((row.alert_id, row) for row in rows)
    return list(changed.values())
