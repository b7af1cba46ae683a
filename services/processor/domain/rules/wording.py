"""Alert wording and routing: who gets the alert, and what it says.

An alert says what happened, what is missing, since when, the deadline, the rule and its
source. Free text is built only from vocabulary symbols (kinds, reasons, service kinds),
event types, agency and team ids and dates; never from identifier values or free-text
payload fields (a referral's ``reason`` may hold personal details, so it is never quoted).
The person is named by the alert's ``person_key`` field, not in the prose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta

from services.alerts.events import AlertEvent, alert_event_id_for
from services.processor.domain.rules.model import LEAD_PROFESSIONAL, Rule, Window
from services.processor.domain.rules.state import Expectation
from services.processor.domain.rules.vocabulary import SYMBOLS

#: payload symbols worth quoting when describing a trigger (all enumerations, no free text)
_QUOTED = sorted({f"payload.{name}" for family, name in SYMBOLS if family != "source"})


def stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M UTC")


def describe_event(facts: Mapping[str, object], occurred_at: datetime) -> str:
    """'transition.occurred (kind MENTAL_HEALTH_DISCHARGE) from a MENTAL_HEALTH service
    (agency mh-trust-leeds) on 2026-03-02 09:00 UTC'."""
    details = [f"{path.split('.', 1)[1]} {facts[path]}" for path in _QUOTED if facts.get(path)]
    if facts.get("payload.in_custody_treatment"):
        details.append("in custody treatment")
    what = str(facts.get("event_type"))
    if details:
        what += f" ({', '.join(details)})"
    return (f"{what} from a {facts.get('source.service_kind')} service "
            f"(agency {facts.get('source.agency')}) on {stamp(occurred_at)}")


def describe_window(window: Window) -> str:
    if window.within is not None:
        return f"within {_span(window.within)} of the trigger"
    if window.working_days is not None:
        return (f"within {window.working_days} working days (England and Wales bank holidays "
                "skipped; the event may set its own number)")
    return f"at least {_span(window.before or timedelta(0))} before the scheduled date"


def route(rule: Rule, trigger: Mapping[str, object], lead_team: str | None) -> str:
    """The duty team: the lead professional's team, or a template on the trigger's source."""
    agency = str(trigger.get("source.agency") or "unknown-agency")
    if rule.route == LEAD_PROFESSIONAL:
        return lead_team or str(trigger.get("source.team") or agency)
    return rule.route.format(
        area=trigger.get("source.area") or "unknown-area",
        team=trigger.get("source.team") or "unknown-team",
        agency=agency,
        service_kind=str(trigger.get("source.service_kind") or "OTHER").lower())


def explanation(rule: Rule, trigger: str, due_at: datetime | None, context: str = "") -> str:
    parts = [f"Trigger: {trigger}."]
    if context:
        parts.append(f"Context: {context}.")
    if due_at is not None and rule.window is not None:
        parts.append(f"Expected: {rule.expected}, {describe_window(rule.window)}, "
                     f"due by {stamp(due_at)}; none was recorded by then.")
    parts.append(f"Rule {rule.id} (version {rule.version}): {rule.explanation.strip()}")
    parts.append(f"Source: {rule.source.strip()}")
    return " ".join(parts)


def lateness(occurred_at: datetime, due_at: datetime) -> str:
    minutes = (occurred_at - due_at).total_seconds() / 60
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.0f} hours" if minutes < 72 * 60 else f"{minutes / 1440:.1f} days"


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.0f} days" if hours >= 48 and hours % 24 == 0 else f"{hours:.0f} hours"


def raised(expectation: Expectation, at: datetime) -> AlertEvent:
    e = expectation
    return AlertEvent(
        alert_event_id=alert_event_id_for(e.expectation_id, "raised"),
        alert_id=e.expectation_id, action="raised", at=at, person_key=e.person_key,
        rule_id=e.rule_id, rule_version=e.rule_version, severity=e.severity,
        duty_team=e.duty_team, title=e.title, explanation=e.explanation,
        source_reference=e.source_reference, trigger_event_id=e.trigger_event_id,
        expected=e.expected, window_start=e.window_start,
        due_at=e.due_at if e.has_deadline else None, area=e.area)


def resolved(expectation: Expectation, at: datetime, resolution: str,
             resolving_event_id: str | None) -> AlertEvent:
    base = raised(expectation, at)
    return dataclasses.replace(
        base, alert_event_id=alert_event_id_for(expectation.expectation_id, "resolved"),
        action="resolved", resolution=resolution, resolving_event_id=resolving_event_id,
        actor="rules-engine")


def evidence(expectation: Expectation, at: datetime, agency: str, event_id: str,
             detail: str) -> AlertEvent:
    """A later event the alert now also stands on (a further decline for a stuck pair)."""
    base = raised(expectation, at)
    return dataclasses.replace(
        base, alert_event_id=alert_event_id_for(expectation.expectation_id,
                                                f"evidence|{agency}/{event_id}"),
        action="evidence", evidence_event_id=event_id, evidence_agency=agency, detail=detail,
        actor="rules-engine")
