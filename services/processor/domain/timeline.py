"""A person's timeline entry for an event: what happened, in words without personal data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.common.events import (
    AgencyEvent,
    Contact,
    Discharge,
    IdentityNotice,
    Referral,
    Transition,
)

#: What an erased person's entries say: their date, agency and kind stay, nothing else.
ERASED: Final = "Erased"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    person_key: str
    occurred_at: datetime
    recorded_at: datetime
    event_id: str
    event_type: str
    source_agency: str
    service_kind: str
    sensitivity: str
    summary: str


def summarise(event: AgencyEvent) -> str:
    """One line a practitioner can read. Codes and kinds only: no names, no addresses."""
    payload = event.payload
    words = event.action.replace("_", " ")
    if isinstance(payload, Referral):
        text = f"Referral {words}: to {payload.to_service_kind.lower()} ({payload.to_agency})"
        if payload.decline_reason:
            text += f", reason {payload.decline_reason.lower()}"
            if payload.cites_service_kind:
                text += f" (cites {payload.cites_service_kind.lower()} first)"
        return text
    if isinstance(payload, Transition):
        kind = payload.kind.replace("_", " ").lower()
        text = f"{kind.capitalize()} {words}"
        if payload.scheduled_for:
            text += f" for {payload.scheduled_for.isoformat()}"
        if payload.reason:
            text += f", reason {payload.reason}"
        if payload.accommodation_on_leaving:
            text += f", accommodation {payload.accommodation_on_leaving.lower()}"
        return text
    if isinstance(payload, Discharge):
        return f"Discharged from {event.source.service_kind.lower()} service: {words}"
    if isinstance(payload, Contact):
        return f"Contact {words}" + (f" ({payload.mode.lower()})" if payload.mode else "")
    if isinstance(payload, IdentityNotice):  # the scheme, never the value
        return (f"Records {'merged' if event.action == 'merged' else 'found to be two people'}"
                f" by {event.source.agency} ({payload.other_scheme.replace('_', ' ')})")
    raise TypeError(f"no summary for {type(payload).__name__}")


def timeline_entry(event: AgencyEvent) -> TimelineEntry:
    return TimelineEntry(
        person_key=event.person_key,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        event_id=event.event_id,
        event_type=event.event_type,
        source_agency=event.source.agency,
        service_kind=event.source.service_kind,
        sensitivity=event.sensitivity,
        summary=ERASED if event.erased else summarise(event),
    )
