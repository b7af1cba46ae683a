"""One governance event of each type, as the tests and the v1 fixtures use them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reads.domain.governance import (
    AccessGranted,
    AccessRevoked,
    Actor,
    AgreementEnded,
    AgreementMade,
    ConsentGiven,
    ConsentWithdrawn,
    EntryDisclosed,
    EpisodeClosed,
    EpisodeOpened,
    GovernanceEvent,
    Payload,
)

T0 = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
PERSON = "0b6e8f7c-3d0a-4c1e-9a51-6f2d1b7a9e10"
LEAD = Actor("practitioner", "leeds-housing", "5d9a1c2e-0000-4000-8000-000000000001",
             "leeds-housing/options")
DRUGS_WORKER = Actor("practitioner", "forward-leeds", "5d9a1c2e-0000-4000-8000-000000000002",
                     "forward-leeds/duty")
OPERATOR = Actor("operator", operator="ig-officer-1")

PAYLOADS: dict[str, Payload] = {
    "consent.given": ConsentGiven("c-1", frozenset({"leeds-housing"}),
                                  frozenset({"SUBSTANCE_USE"}), T0, T0 + timedelta(days=365),
                                  "explicit"),
    "consent.withdrawn": ConsentWithdrawn("c-1"),
    "agreement.made": AgreementMade("a-1", frozenset({"hmp-leeds", "leeds-housing"}),
                                    frozenset({"CRIMINAL_JUSTICE", "GENERAL"}), T0, None,
                                    "ISA-2026-14"),
    "agreement.ended": AgreementEnded("a-1"),
    "episode.opened": EpisodeOpened("ep-1", LEAD.practitioner_id or "", "leeds-housing",
                                    "leeds-housing/options"),
    "episode.closed": EpisodeClosed("ep-1"),
    "access.granted": AccessGranted("g-1", "ep-1", None, "probation-yh/leeds-north"),
    "access.revoked": AccessRevoked("g-1"),
    "entry.disclosed": EntryDisclosed("d-1", "forward-leeds",
                                      "7f0c1a52-8e1b-4a4e-b0a5-1c6a7d2e9f31", "leeds-housing",
                                      "safeguarding", "risk of eviction"),
}


def sample(event_type: str, n: int = 1) -> GovernanceEvent:
    """The sample event of a type, the n-th recorded (a minute apart)."""
    payload = PAYLOADS[event_type]
    person = None if event_type.startswith("agreement.") else PERSON
    actor = {"entry.disclosed": DRUGS_WORKER}.get(event_type, OPERATOR if person is None
                                                   else LEAD)
    return GovernanceEvent(f"00000000-0000-4000-8000-{n:012d}", T0 + timedelta(minutes=n),
                           person, actor, payload)
