"""Small builders for events in tests (the simulator makes populations; these make one fact)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.common.events import (
    AgencyEvent,
    Contact,
    Discharge,
    Identifier,
    Payload,
    Referral,
    Source,
    Transition,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NHS = "9434765919"  # a valid NHS number (mod 11), used in NHS Digital's own examples

SOURCES = {
    "PRISON": Source("hmp-leeds", "PRISON", "NOMIS", "omu", "E08000035"),
    "MENTAL_HEALTH": Source("mh-trust-leeds", "MENTAL_HEALTH", "RiO", "crisis", "E08000035"),
    "HOUSING": Source("leeds-housing", "HOUSING", "Northgate", "options", "E08000035"),
    "SUBSTANCE_USE": Source("forward-leeds", "SUBSTANCE_USE", "Nebula", "intake", "E08000035"),
    "PROBATION": Source("probation-yh", "PROBATION", "nDelius", "ldu-leeds", "E08000035"),
}


def event(event_type: str, payload: Payload, *, at: datetime = T0, delay: timedelta = timedelta(),
          source: str = "PRISON", nhs: str = NHS, event_id: str | None = None) -> AgencyEvent:
    return AgencyEvent(
        event_id=event_id or str(uuid.uuid4()), event_type=event_type, occurred_at=at,
        recorded_at=at + delay, source=SOURCES[source],
        identifiers=(Identifier("nhs_number", nhs),), payload=payload)


def referral(action: str, referral_id: str = "r-1", to: str = "HOUSING", **kw: object) -> AgencyEvent:
    fields = {k: kw.pop(k) for k in list(kw) if k in Referral.__dataclass_fields__}
    to_agency = {"HOUSING": "leeds-housing", "SUBSTANCE_USE": "forward-leeds",
                 "MENTAL_HEALTH": "mh-trust-leeds"}.get(to, "other-agency")
    return event(f"referral.{action}", Referral(referral_id, to_agency, to, **fields), **kw)  # type: ignore[arg-type]


def transition(action: str, kind: str, transition_id: str = "t-1", **kw: object) -> AgencyEvent:
    fields = {k: kw.pop(k) for k in list(kw) if k in Transition.__dataclass_fields__}
    return event(f"transition.{action}", Transition(transition_id, kind, **fields), **kw)  # type: ignore[arg-type]


def discharge(action: str, **kw: object) -> AgencyEvent:
    return event(f"discharge.{action}", Discharge(), **kw)  # type: ignore[arg-type]


def contact(action: str, contact_id: str = "c-1", **kw: object) -> AgencyEvent:
    return event(f"contact.{action}", Contact(contact_id), **kw)  # type: ignore[arg-type]
