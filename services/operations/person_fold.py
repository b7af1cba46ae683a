"""One person's read models folded in memory from their events, and what to make of them. Pure.

The registry's own folds (``ReadModel.fold_all``, as the live pipeline and the dry run
apply them), over one person's events in the order the pipeline applied them, with fresh
in-memory states: nothing is read from or written to the live tables. From the result:
the person as known at a time (``as_of``) and how it differs from what the live tables
hold (``differences``). Only codes, ids, times and summaries built from codes: a
referral's free text (reason, outcome, who decided) is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.events import AgencyEvent
from services.processor.domain.caseload import CaseloadEntry
from services.processor.domain.referrals import ReferralState
from services.processor.domain.rules import PersonRuleState, RulePack, fire_due
from services.processor.domain.rules.state import ALERTED, OPEN, RESOLVED, Expectation
from services.processor.domain.timeline import TimelineEntry
from services.processor.read_models import Registry

#: the status a duty action leaves an alert in (others leave it as it was)
_STATUS_AFTER = {"acknowledged": "acknowledged", "unacknowledged": "open",
                 "snoozed": "snoozed", "woke": "acknowledged", "reopened": "open"}


@dataclass
class PersonFold:
    person: str
    events: int
    timeline: list[TimelineEntry] = field(default_factory=list)
    caseload: list[CaseloadEntry] = field(default_factory=list)
    referrals: list[ReferralState] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)


def fold_person(registry: Registry, pack: RulePack, person: str,
                events: Sequence[AgencyEvent], at: datetime) -> PersonFold:
    """Every read model of ``registry`` over ``events``; the rules' deadlines judged at
    ``at`` (what the deadline timer would have fired by then)."""
    states: dict[str, dict[Any, Any]] = {m.name: {} for m in registry.models}
    changes = {m.name: m.fold_all(states[m.name], events) for m in registry.models}
    fold = PersonFold(person, len(events))
    fold.timeline = sorted(changes.get("timeline", []),
                           key=lambda t: (t.occurred_at, t.recorded_at, t.event_id))
    fold.caseload = sorted((entry for caseload in states.get("caseload", {}).values()
                            for entry in (caseload or {}).values()),
                           key=lambda c: (not c.active, c.since, c.agency))
    fold.referrals = sorted((r for r in states.get("referrals", {}).values() if r),
                            key=lambda r: (r.made_at or r.status_at, r.referral_id))
    rules: PersonRuleState | None = states.get("rules", {}).get(person)
    # Every expectation the fold wrote, as the live table keeps them (the engine's state
    # forgets closed ones past its horizon; their rows stay), then the timer's firings.
    every: dict[str, Expectation] = {}
    for outcome in changes.get("rules", []):
        every.update((e.expectation_id, e) for e in outcome.changed_expectations)
    if rules is not None:
        every.update((e.expectation_id, e) for e, _ in fire_due(pack, rules.expectations, at))
    fold.expectations = sorted(every.values(), key=lambda e: (e.window_start, e.expectation_id))
    return fold


def as_of(fold: PersonFold, at: datetime, duty: Iterable[Mapping[str, Any]]
          ) -> dict[str, Any]:
    """The person as joinedup knew them at ``at``: ``fold`` of the events known by then,
    and the duty teams' actions on their alerts up to then (``alert_id``, ``action``,
    ``at``, ``actor`` each)."""
    actions: dict[str, list[dict[str, Any]]] = {}
    for a in duty:
        actions.setdefault(a["alert_id"], []).append(
            {"action": a["action"], "at": a["at"], "actor": a["actor"]})
    return {
        "person_id": fold.person, "at": at, "events": fold.events,
        "timeline": [_timeline(t) for t in fold.timeline],
        "caseload": [_caseload(c) for c in fold.caseload],
        "referrals": [_referral(r) for r in fold.referrals],
        "open_expectations": [_expectation(e) for e in fold.expectations if e.status == OPEN],
        "alerts": [_alert(e, actions.get(e.expectation_id, [])) for e in fold.expectations
                   if e.raised_at is not None and e.raised_at <= at],
    }


def _timeline(t: TimelineEntry) -> dict[str, Any]:
    return {"occurred_at": t.occurred_at, "recorded_at": t.recorded_at, "event_id": t.event_id,
            "event_type": t.event_type, "source_agency": t.source_agency,
            "service_kind": t.service_kind, "sensitivity": t.sensitivity, "summary": t.summary}


def _caseload(c: CaseloadEntry) -> dict[str, Any]:
    return {"agency": c.agency, "service_kind": c.service_kind, "active": c.active,
            "since": c.since, "last_event_at": c.last_event_at,
            "last_event_id": c.last_event_id, "ended_reason": c.ended_reason}


def _referral(r: ReferralState) -> dict[str, Any]:
    return {"referral_id": r.referral_id, "from_agency": r.from_agency,
            "to_agency": r.to_agency, "to_service_kind": r.to_service_kind,
            "status": r.status, "status_at": r.status_at, "last_event_id": r.last_event_id}


def _expectation(e: Expectation) -> dict[str, Any]:
    return {"alert_id": e.expectation_id, "rule_id": e.rule_id,
            "trigger_event_id": e.trigger_event_id, "window_start": e.window_start,
            "due_at": e.due_at, "expected": e.expected}


def _alert(e: Expectation, actions: list[dict[str, Any]]) -> dict[str, Any]:
    status = "open"
    for a in actions:
        status = _STATUS_AFTER.get(a["action"], status)
    if e.status == RESOLVED:
        status = "resolved"
    return {"alert_id": e.expectation_id, "rule_id": e.rule_id, "severity": e.severity,
            "title": e.title, "duty_team": e.duty_team, "raised_at": e.raised_at,
            "due_at": e.due_at if e.has_deadline else None, "status": status,
            "resolved_at": e.closed_at if e.status == RESOLVED else None,
            "resolution": e.resolution if e.status == RESOLVED else None,
            "duty_actions": actions}


# --- replaying one person: the fold against the live tables ---------------------------------

@dataclass(frozen=True, slots=True)
class Difference:
    read_model: str
    key: str
    live: str | None      # what the live table holds (None: nothing)
    replayed: str | None  # what the replay gives (None: nothing)


def differences(fold: PersonFold, live: Mapping[str, Sequence[Mapping[str, Any]]],
                now: datetime) -> list[Difference]:
    """Where the live tables (``timeline``, ``caseload``, ``referrals``, ``rules``: rows of
    the person) and the replay disagree, key by key, in a few compared fields each.

    ``fold`` is judged at the person's own clock (their latest recorded-at, as the rules
    fold ran); an expectation still open there but due before ``now`` may have been fired
    by the deadline timer since, so live "alerted" is no difference for it."""
    replayed = {
        "timeline": {f"{t.source_agency}/{t.event_id}": f"{t.event_type} | {t.summary}"
                     for t in fold.timeline},
        "caseload": {f"{c.agency}/{c.service_kind}": _involved(c.active, c.ended_reason)
                     for c in fold.caseload},
        "referrals": {r.referral_id: f"{r.status} since {r.status_at.isoformat()}"
                      for r in fold.referrals},
        "rules": {e.expectation_id: f"{e.rule_id} {e.status}" for e in fold.expectations},
    }
    held = {
        "timeline": {f"{r['source_agency']}/{r['event_id']}": f"{r['event_type']} | "
                     f"{r['summary']}" for r in live.get("timeline", [])},
        "caseload": {f"{r['agency']}/{r['service_kind']}": _involved(r["active"],
                                                                     r["ended_reason"])
                     for r in live.get("caseload", [])},
        "referrals": {r["referral_id"]: f"{r['status']} since {r['status_at'].isoformat()}"
                      for r in live.get("referrals", [])},
        "rules": {r["expectation_id"]: f"{r['rule_id']} {r['status']}"
                  for r in live.get("rules", [])},
    }
    for e in fold.expectations:  # what the timer may have fired by now
        fired = f"{e.rule_id} {ALERTED}"
        if e.status == OPEN and e.due_at < now and held["rules"].get(e.expectation_id) == fired:
            replayed["rules"][e.expectation_id] = fired
    found = []
    for name, ours in replayed.items():
        theirs = held[name]
        for key in sorted(ours.keys() | theirs.keys()):
            if ours.get(key) != theirs.get(key):
                found.append(Difference(name, key, theirs.get(key), ours.get(key)))
    return found


def _involved(active: bool, ended: str | None) -> str:
    return "active" if active else f"ended ({ended or 'no reason'})"
