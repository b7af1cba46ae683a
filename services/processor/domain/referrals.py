"""Closed-loop referral state, in the FHIR Task vocabulary the Gravity Project uses.

referral.made -> requested, acknowledged -> received, accepted -> accepted,
declined -> rejected, withdrawn -> cancelled, closed -> completed.

Events from two agencies arrive in any order, so the current status is the one with the
latest occurred-at; for equal times the status further along the loop wins (`rank`), so a
late "acknowledged" never undoes an "accepted".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from services.common.events import AgencyEvent, Referral

STATUS_BY_ACTION = {
    "made": "requested",
    "acknowledged": "received",
    "accepted": "accepted",
    "declined": "rejected",
    "withdrawn": "cancelled",
    "closed": "completed",
}
RANK = {"requested": 0, "received": 1, "accepted": 2, "rejected": 3, "cancelled": 4,
        "completed": 5}
TERMINAL = frozenset({"rejected", "cancelled", "completed"})


@dataclass(frozen=True, slots=True)
class ReferralState:
    referral_id: str
    person_key: str
    from_agency: str
    to_agency: str
    to_service_kind: str
    status: str
    status_at: datetime
    last_event_id: str
    made_at: datetime | None = None
    decline_reason: str | None = None
    cites_service_kind: str | None = None
    decided_by: str | None = None
    outcome: str | None = None

    @property
    def status_rank(self) -> int:
        return RANK[self.status]


@dataclass(frozen=True, slots=True)
class StatusChange:
    referral_id: str
    event_id: str
    status: str
    occurred_at: datetime
    set_by: str


def apply_referral_event(
    state: ReferralState | None, event: AgencyEvent,
) -> tuple[ReferralState, StatusChange]:
    payload = event.payload
    assert isinstance(payload, Referral)
    status = STATUS_BY_ACTION[event.action]
    change = StatusChange(payload.referral_id, event.event_id, status, event.occurred_at,
                          event.source.agency)
    made_at = event.occurred_at if event.action == "made" else None
    if state is None:
        # The answer can arrive before the referral itself: keep who sent what we know.
        from_agency = event.source.agency if event.action == "made" else "unknown"
        state = ReferralState(
            referral_id=payload.referral_id, person_key=event.person_key,
            from_agency=from_agency, to_agency=payload.to_agency,
            to_service_kind=payload.to_service_kind, status=status,
            status_at=event.occurred_at, last_event_id=event.event_id, made_at=made_at)
    elif event.action == "made":
        state = dataclasses.replace(state, from_agency=event.source.agency, made_at=made_at)
    if (event.occurred_at, RANK[status]) >= (state.status_at, state.status_rank):
        state = dataclasses.replace(
            state, status=status, status_at=event.occurred_at, last_event_id=event.event_id)
    if event.action == "declined":
        state = dataclasses.replace(
            state, decline_reason=payload.decline_reason,
            cites_service_kind=payload.cites_service_kind, decided_by=payload.decided_by)
    if event.action == "closed" and payload.outcome:
        state = dataclasses.replace(state, outcome=payload.outcome)
    return state, change
