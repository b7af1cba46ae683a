"""Caseload: which agencies currently work with a person.

An agency is on the caseload from its first event about the person, or from accepting a
referral; a discharge from that agency ends its involvement. Events arrive out of order across
agencies, so the latest occurred-at decides whether an agency is active.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from services.common.events import AgencyEvent, Referral

_ENDING_REFERRAL = frozenset({"declined", "withdrawn", "closed"})

#: (agency, service kind, active, ended reason)
Involvement = tuple[str, str, bool, str | None]


@dataclass(frozen=True, slots=True)
class CaseloadEntry:
    person_key: str
    agency: str
    service_kind: str
    active: bool
    since: datetime
    last_event_at: datetime
    last_event_id: str
    ended_reason: str | None = None


def involvements(event: AgencyEvent) -> list[Involvement]:
    """(agency, service kind, active, ended reason) facts this event states."""
    if event.family == "discharge":
        return [(event.source.agency, event.source.service_kind, False, event.action)]
    if event.family == "identity":  # about the agency's records, not its work with them
        return []
    facts: list[Involvement] = [(event.source.agency, event.source.service_kind, True, None)]
    payload = event.payload
    if isinstance(payload, Referral):
        if event.action == "accepted":
            facts = [(payload.to_agency, payload.to_service_kind, True, None)]
        elif event.action in _ENDING_REFERRAL and event.source.agency == payload.to_agency:
            # The receiving service said no or closed it: it is not working with the person.
            facts = [(payload.to_agency, payload.to_service_kind, False, f"referral {event.action}")]
    return facts


def apply_caseload_event(
    current: dict[str, CaseloadEntry], event: AgencyEvent,
) -> list[CaseloadEntry]:
    """Fold one event into the person's caseload (keyed by agency); returns changed entries."""
    changed = []
    for agency, service_kind, active, reason in involvements(event):
        entry = current.get(agency)
        if entry is None:
            entry = CaseloadEntry(event.person_key, agency, service_kind, active,
                                  event.occurred_at, event.occurred_at, event.event_id,
                                  None if active else reason)
        elif event.occurred_at >= entry.last_event_at:
            since = entry.since if entry.active == active else event.occurred_at
            entry = dataclasses.replace(
                entry, active=active, since=since, last_event_at=event.occurred_at,
                last_event_id=event.event_id, ended_reason=None if active else reason)
        elif event.occurred_at < entry.since and entry.active and active:
            entry = dataclasses.replace(entry, since=event.occurred_at)  # earlier first contact
        else:
            continue
        current[agency] = entry
        changed.append(entry)
    return changed
