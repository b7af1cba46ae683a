"""A person's read models as one reader is shown them. Pure: rows in, views out.

Each read model's row becomes a visibility ``Entry`` (who recorded it, its category), is
decided on (``visibility.decide``) and comes out whole or as "Confidential":

- a timeline entry is itself;
- a caseload involvement is in the category of the kind of service: that a housing team
  works with the person is shared with every reader (who else is involved is what joined-up
  work needs first), that a drug service does is as restricted as the drug service's own
  entries;
- a referral is recorded by the referrer and is the receiving agency's own too; its category
  is the most sensitive of its service kind's and its events';
- an open expectation and an alert reveal their rule's subject (each rule names its
  category), their trigger entry's category and, once resolved by an event, that event's:
  they are decided on the most sensitive of these, with the trigger's agency as the
  recording one (or shown to the agency their duty team belongs to).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from services.reads.domain.visibility import (
    RESTRICTED,
    Context,
    Decision,
    Entry,
    Reader,
    decide,
)

#: The category an involvement with a kind of service reveals.
SERVICE_CATEGORY: Final[dict[str, str]] = {
    "MENTAL_HEALTH": "MENTAL_HEALTH", "SUBSTANCE_USE": "SUBSTANCE_USE",
    "MARAC": "DOMESTIC_ABUSE", "ACUTE_HOSPITAL": "HEALTH", "PRIMARY_CARE": "HEALTH",
    "PRISON": "CRIMINAL_JUSTICE", "PROBATION": "CRIMINAL_JUSTICE",
    "POLICE": "CRIMINAL_JUSTICE",
}
#: Most sensitive first: what a mix of categories counts as.
_ORDER: Final = ("SEXUAL_HEALTH", "DOMESTIC_ABUSE", "SUBSTANCE_USE", "MENTAL_HEALTH",
                 "HEALTH", "CRIMINAL_JUSTICE", "GENERAL")
#: A trigger not (yet) on the timeline: withheld from everyone but its duty team's agency.
UNKNOWN: Final = "UNKNOWN"


def service_category(service_kind: str) -> str:
    return SERVICE_CATEGORY.get(service_kind, "GENERAL")


def most_sensitive(categories: Iterable[str]) -> str:
    found = set(categories)
    return next((c for c in _ORDER if c in found), "GENERAL")


@dataclass(frozen=True, slots=True)
class Shown:
    """One item as the reader gets it. A withheld item keeps its date and the kind of
    service behind it, and ``fields`` is empty."""
    item_id: str
    on: date
    service_kind: str
    confidential: bool
    because: str
    fields: Mapping[str, Any]


def _shown(item_id: str, entry: Entry, decision: Decision, fields: Mapping[str, Any]
           ) -> Shown:
    return Shown(item_id, entry.occurred_at.date(), entry.service_kind, not decision.visible,
                 decision.because, fields if decision.visible else {})


def timeline(rows: Iterable[Mapping[str, Any]], reader: Reader, context: Context,
             at: datetime) -> list[Shown]:
    out = []
    for r in rows:
        entry = Entry(r["event_id"], r["source_agency"], r["service_kind"], r["sensitivity"],
                      r["occurred_at"], r["summary"])
        out.append(_shown(r["event_id"], entry, decide(entry, reader, context, at), {
            "occurred_at": r["occurred_at"], "recorded_at": r["recorded_at"],
            "event_type": r["event_type"], "agency": r["source_agency"],
            "category": r["sensitivity"], "summary": r["summary"]}))
    return out


def caseload(rows: Iterable[Mapping[str, Any]], reader: Reader, context: Context,
             at: datetime) -> list[Shown]:
    out = []
    for r in rows:
        category = service_category(r["service_kind"])
        entry = Entry(r["last_event_id"], r["agency"], r["service_kind"], category, r["since"],
                      "")
        decision = (decide(entry, reader, context, at) if category in RESTRICTED
                    else Decision(True, "who works with the person is shared"))
        out.append(_shown(r["last_event_id"], entry, decision, {
            "agency": r["agency"], "active": r["active"], "since": r["since"],
            "ended_reason": r["ended_reason"]}))
    return out


def referrals(rows: Iterable[Mapping[str, Any]], reader: Reader, context: Context,
              at: datetime) -> list[Shown]:
    out = []
    for r in rows:
        category = most_sensitive([service_category(r["to_service_kind"]),
                                   *r["sensitivities"]])
        entry = Entry(r["last_event_id"], r["from_agency"], r["to_service_kind"], category,
                      r["made_at"] or r["status_at"], "", frozenset({r["to_agency"]}))
        out.append(_shown(r["referral_id"], entry, decide(entry, reader, context, at), {
            "referral_id": r["referral_id"], "from_agency": r["from_agency"],
            "to_agency": r["to_agency"], "to_service_kind": r["to_service_kind"],
            "status": r["status"], "status_at": r["status_at"], "made_at": r["made_at"],
            "decline_reason": r["decline_reason"],
            "cites_service_kind": r["cites_service_kind"], "category": category}))
    return out


RuleCategories = Mapping[str, str]


def _trigger(r: Mapping[str, Any], moment: datetime, rules: RuleCategories) -> Entry:
    """The entry an expectation or alert is decided as: its trigger's agency, and the most
    sensitive of the categories it reveals (UNKNOWN if any of them is not known)."""
    parts = [r["sensitivity"] or UNKNOWN, rules.get(r["rule_id"], UNKNOWN)]
    if r.get("resolving_sensitivity"):
        parts += [r["resolving_sensitivity"], service_category(r["resolving_service_kind"])]
    category = UNKNOWN if UNKNOWN in parts else most_sensitive(parts)
    return Entry(r["trigger_event_id"], r["source_agency"] or "", r["service_kind"] or "OTHER",
                 category, r["occurred_at"] or moment, "")


def _routed_to_reader(duty_team: str | None, reader: Reader) -> bool:
    """An alert or expectation routed to a team of the reader's own agency (routes such as
    ``<agency>:<team>``) is theirs to act on."""
    return duty_team is not None and duty_team.split(":", 1)[0] == reader.agency


def _decide_triggered(r: Mapping[str, Any], entry: Entry, reader: Reader, context: Context,
                      at: datetime) -> Decision:
    if _routed_to_reader(r["duty_team"], reader):
        return Decision(True, "routed to the reader's agency")
    if entry.sensitivity == UNKNOWN:
        return Decision(False, "what it reveals is not known (its trigger is not on the "
                               "person's timeline, or its rule is not in the rule pack)")
    return decide(entry, reader, context, at)


def expectations(rows: Iterable[Mapping[str, Any]], reader: Reader, context: Context,
                 at: datetime, rules: RuleCategories) -> list[Shown]:
    out = []
    for r in rows:
        entry = _trigger(r, r["due_at"] or at, rules)
        out.append(_shown(r["expectation_id"], entry,
                          _decide_triggered(r, entry, reader, context, at), {
            "rule_id": r["rule_id"], "title": r["title"], "expected": r["expected"],
            "due_at": r["due_at"], "severity": r["severity"], "duty_team": r["duty_team"]}))
    return out


def alerts(rows: Iterable[Mapping[str, Any]], reader: Reader, context: Context,
           at: datetime, rules: RuleCategories) -> list[Shown]:
    out = []
    for r in rows:
        entry = _trigger(r, r["raised_at"], rules)
        out.append(_shown(r["alert_id"], entry,
                          _decide_triggered(r, entry, reader, context, at), {
            "rule_id": r["rule_id"], "severity": r["severity"], "duty_team": r["duty_team"],
            "title": r["title"], "explanation": r["explanation"], "expected": r["expected"],
            "source_reference": r["source_reference"], "status": r["status"],
            "raised_at": r["raised_at"], "due_at": r["due_at"],
            "resolved_at": r["resolved_at"], "resolution": r["resolution"],
            "historical": r["historical"]}))
    return out
