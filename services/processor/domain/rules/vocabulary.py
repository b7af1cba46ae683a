"""Which field paths and values a rule may name: the vocabularies of ``services.common.events``.

A rule that says ``payload.kind = "MENTAL_HEALTH_DISCHARG"`` would silently never fire; these
checks turn such typos into start-up errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date

from services.common.events import (
    ACCOMMODATION_STATUSES,
    DECLINE_REASONS,
    EVENT_TYPES,
    PAYLOAD_BY_FAMILY,
    RELEASE_REASONS,
    SERVICE_KINDS,
    TRANSITION_KINDS,
    AgencyEvent,
    Source,
)

#: (family or "source", field) -> the symbols it may hold
SYMBOLS: dict[tuple[str, str], tuple[str, ...]] = {
    ("transition", "kind"): TRANSITION_KINDS,
    ("transition", "reason"): RELEASE_REASONS,
    ("transition", "accommodation_on_leaving"): ACCOMMODATION_STATUSES,
    ("discharge", "accommodation_on_leaving"): ACCOMMODATION_STATUSES,
    ("discharge", "destination_service_kind"): SERVICE_KINDS,
    ("referral", "to_service_kind"): SERVICE_KINDS,
    ("referral", "cites_service_kind"): SERVICE_KINDS,
    ("referral", "decline_reason"): DECLINE_REASONS,
    ("source", "service_kind"): SERVICE_KINDS,
}
BOOLEAN = {("transition", "in_custody_treatment")}
#: Free text an agency may fill with personal details (and identifier values): never
#: remembered, never quoted.
#: (``payload.reason`` is a release-reason symbol on a transition but free text on a referral.)
FREE_TEXT = {("referral", "reason"), ("referral", "outcome"), ("referral", "decided_by"),
             ("transition", "location"), ("contact", "mode"),
             ("identity", "other_value")}  # an identifier value: personal data
INTEGER = {("referral", "sla_working_days")}


def _split(path: str) -> tuple[str, str] | None:
    head, _, name = path.partition(".")
    return (head, name) if head in ("payload", "source") and name else None


def field_problem(path: object, families: Iterable[str]) -> str | None:
    """Why ``path`` cannot be read from events of these families, or None if it can."""
    parts = _split(path) if isinstance(path, str) else None
    if parts is None:
        return f"{path!r} is not a field path like 'payload.kind' or 'source.service_kind'"
    head, name = parts
    if head == "source":
        names = {f.name for f in dataclasses.fields(Source)}
        return None if name in names else f"Source has no field '{name}'"
    for family in families:
        cls = PAYLOAD_BY_FAMILY.get(family)
        if cls is not None and name not in {f.name for f in dataclasses.fields(cls)}:
            return f"a {family} payload has no field '{name}'"
        if (family, name) in FREE_TEXT:
            return f"'{name}' of a {family} is free text; rules may not read it"
    return None


def values_problem(path: str, families: Iterable[str], values: Iterable[object]) -> list[str]:
    """Values that the field can never hold (unknown symbols, wrong types)."""
    if path == "event_type":
        return [f"unknown event type {v!r}" for v in values if v not in EVENT_TYPES]
    parts = _split(path)
    if parts is None:
        return []
    head, name = parts
    keys = [("source", name)] if head == "source" else [(f, name) for f in families]
    problems = []
    for key in keys:
        for value in values:
            if key in BOOLEAN and not isinstance(value, bool):
                problems.append(f"{value!r} is not true or false")
            elif key in INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
                problems.append(f"{value!r} is not a whole number")
            elif key in SYMBOLS and value not in SYMBOLS[key]:
                problems.append(f"unknown value {value!r} (expected one of "
                                f"{', '.join(SYMBOLS[key])})")
    return list(dict.fromkeys(problems))


def facts_of(event: AgencyEvent) -> dict[str, object]:
    """The flat view rules match on: event_type, payload.<field>, source.<field>; free-text
    payload fields are left out."""
    facts: dict[str, object] = {"event_type": event.event_type}
    payload = event.payload
    paths = _PAYLOAD_PATHS.get((event.family, type(payload)))
    if paths is None:  # a payload of another family's class: read it the slow way
        paths = _payload_paths(event.family, payload)
    for name, path in paths:
        value = getattr(payload, name)
        facts[path] = value.isoformat() if isinstance(value, date) else value
    source = event.source
    for name, path in _SOURCE_PATHS:
        facts[path] = getattr(source, name)
    return facts


def _payload_paths(family: str, payload: object) -> tuple[tuple[str, str], ...]:
    """(field, fact path) of a payload class, free text left out: no rule may read it, so no
    marker or alert text can carry it."""
    return tuple((f.name, f"payload.{f.name}") for f in dataclasses.fields(payload)  # type: ignore[arg-type]
                 if (family, f.name) not in FREE_TEXT)


# Worked out once: ``dataclasses.fields`` and the path strings cost more than the values.
_PAYLOAD_PATHS = {(family, cls): _payload_paths(family, cls)
                  for family, cls in PAYLOAD_BY_FAMILY.items()}
_SOURCE_PATHS = tuple((f.name, f"source.{f.name}") for f in dataclasses.fields(Source))
