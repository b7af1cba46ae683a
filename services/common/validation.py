"""Checks every event meets, whichever way it arrived (HTTP gateway or straight to Kafka).

Each problem names the field path and the reason, never the offending value: values can be
personal data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.events import IDENTIFIER_SCHEMES, AgencyEvent
from services.common.identifiers import identifier_problem


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    reason: str
    code: str = "invalid"  # a stable reason code for clients and metric labels (no values)

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def event_problems(
    event: AgencyEvent, now: datetime | None = None, future_tolerance: timedelta | None = None,
) -> list[Problem]:
    """Everything wrong with an event; empty when it may be accepted.

    `now` is given by the caller (the gateway passes the wall clock; the processor passes
    None and skips the future check, because replaying old messages must not fail it).
    """
    problems: list[Problem] = []
    try:
        uuid.UUID(event.event_id)
    except ValueError:
        problems.append(Problem("event_id", "must be a UUID", "invalid_event_id"))
    if event.recorded_at < event.occurred_at:
        problems.append(Problem("recorded_at", "is before occurred_at", "recorded_before_occurred"))
    if now is not None and future_tolerance is not None and (
            event.occurred_at > now + future_tolerance):
        problems.append(Problem(
            "occurred_at", f"is more than {int(future_tolerance.total_seconds())}s in the future",
            "occurred_in_future"))
    if not event.source.agency.strip():
        problems.append(Problem("source.agency", "must not be empty", "missing_agency"))
    for index, identifier in enumerate(event.identifiers):
        path = f"identifiers[{index}]"
        if identifier.scheme not in IDENTIFIER_SCHEMES:
            problems.append(Problem(
                f"{path}.scheme", f"unknown scheme; expected one of {', '.join(IDENTIFIER_SCHEMES)}",
                "unknown_identifier_scheme"))
            continue
        reason = identifier_problem(identifier.scheme, identifier.value)
        if reason:
            problems.append(Problem(f"{path}.value", reason, "invalid_identifier"))
    return problems


def message_refusal(event: AgencyEvent, key: bytes | None) -> str | None:
    """Why a message read from Kafka cannot be taken (contract problems, or a message key
    that is not the person key), or None. Names fields, never values."""
    problems = event_problems(event)
    if problems:
        return "invalid: " + "; ".join(str(p) for p in problems)
    if key is not None and key.decode(errors="replace") != event.person_key:
        return "invalid: message key must be the person key of the identifiers"
    return None
