"""Measures of a simulated stream, computed the way a rule would see it (from the events only).

Each returns (met, total), so a test can check a proportion and that it was measured on
enough cases to mean something.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from services.common.events import AgencyEvent, Contact, Referral, Transition

Share = tuple[int, int]


def by_person(events: Iterable[AgencyEvent]) -> dict[str, list[AgencyEvent]]:
    people: dict[str, list[AgencyEvent]] = defaultdict(list)
    for event in events:
        people[event.identifier_key].append(event)
    for history in people.values():
        history.sort(key=lambda e: e.occurred_at)
    return people


def _releases(history: list[AgencyEvent]) -> list[tuple[AgencyEvent, Transition]]:
    return [(e, e.payload) for e in history if isinstance(e.payload, Transition)
            and e.event_type == "transition.occurred" and e.payload.kind == "PRISON_RELEASE"
            and e.payload.reason == "RELEASED"]


def duty_to_refer_on_time(people: dict[str, list[AgencyEvent]]) -> Share:
    """Releases (scheduled in the window) with a housing referral made 56+ days before."""
    met = total = 0
    for history in people.values():
        for release, payload in _releases(history):
            scheduled = [e for e in history if e.event_type == "transition.scheduled"
                         and isinstance(e.payload, Transition)
                         and e.payload.transition_id == payload.transition_id]
            if not scheduled:
                continue
            total += 1
            deadline = release.occurred_at - timedelta(days=56)
            met += any(e.event_type == "referral.made" and isinstance(e.payload, Referral)
                       and e.payload.to_service_kind == "HOUSING"
                       and scheduled[0].occurred_at <= e.occurred_at <= deadline for e in history)
    return met, total


def released_homeless(people: dict[str, list[AgencyEvent]]) -> Share:
    releases = [p for history in people.values() for _, p in _releases(history)]
    homeless = sum(p.accommodation_on_leaving in ("NO_FIXED_ABODE", "ROUGH_SLEEPING")
                   for p in releases)
    return homeless, len(releases)


def treated_in_custody(people: dict[str, list[AgencyEvent]]) -> Share:
    releases = [p for history in people.values() for _, p in _releases(history)]
    return sum(bool(p.in_custody_treatment) for p in releases), len(releases)


def community_treatment_within_21_days(people: dict[str, list[AgencyEvent]], end: datetime) -> Share:
    """Of releases of treated people (with 21 days left in the window), how many attended a
    drug service appointment within 21 days."""
    met = total = 0
    for history in people.values():
        for release, payload in _releases(history):
            due = release.occurred_at + timedelta(days=21)
            if not payload.in_custody_treatment or due >= end:
                continue
            total += 1
            met += any(e.source.service_kind == "SUBSTANCE_USE" and e.event_type == "contact.attended"
                       and release.occurred_at < e.occurred_at <= due for e in history)
    return met, total


def after_mental_health_discharge(people: dict[str, list[AgencyEvent]], event_type: str,
                                  within: timedelta, end: datetime) -> Share:
    met = total = 0
    for history in people.values():
        for e in history:
            if (e.event_type == "transition.occurred" and isinstance(e.payload, Transition)
                    and e.payload.kind == "MENTAL_HEALTH_DISCHARGE" and e.occurred_at + within < end):
                total += 1
                met += any(f.event_type == event_type and f.causation_id == e.event_id
                           and f.occurred_at <= e.occurred_at + within for f in history)
    return met, total


def referral_answers(events: Iterable[AgencyEvent]) -> dict[str, dict[str, AgencyEvent]]:
    """referral id -> action -> event."""
    chains: dict[str, dict[str, AgencyEvent]] = defaultdict(dict)
    for e in events:
        if isinstance(e.payload, Referral):
            chains[e.payload.referral_id][e.action] = e
    return chains


def stuck_people(people: dict[str, list[AgencyEvent]]) -> int:
    """People declined by mental health citing drug use and by the drug service citing
    mental health."""
    count = 0
    for history in people.values():
        cited = {(e.payload.to_service_kind, e.payload.cites_service_kind) for e in history
                 if e.event_type == "referral.declined" and isinstance(e.payload, Referral)}
        count += {("MENTAL_HEALTH", "SUBSTANCE_USE"), ("SUBSTANCE_USE", "MENTAL_HEALTH")} <= cited
    return count


def contact_attendance(events: Iterable[AgencyEvent]) -> Share:
    attended = missed = 0
    for e in events:
        if isinstance(e.payload, Contact):
            attended += e.event_type == "contact.attended"
            missed += e.event_type == "contact.missed"
    return attended, attended + missed
