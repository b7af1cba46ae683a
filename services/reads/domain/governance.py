"""Governance events and what they add up to. Pure: plain data in, plain data out.

A governance event records one decision about who may see a person's records (the person's
consent, the lead professional's grants, a disclosure) or about what agencies share
(an agreement). Events are never changed: consent is withdrawn by a later event, a grant
revoked by a later event. A person's *record* is the fold of their events in the order they
were recorded; with the agreements in force it gives the visibility ``Context`` of a read.

What may be recorded on top of a record is ``refusals.py``'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from services.reads.domain.visibility import (
    Agreement,
    Consent,
    Context,
    Disclosure,
    Grant,
)

ACTOR_KINDS: Final = ("practitioner", "agency", "operator")
#: The lawful bases a case-by-case disclosure names (UK GDPR article 6 and the Data
#: Protection Act 2018 conditions practitioners cite for sharing without consent).
LEGAL_BASES: Final = (
    "consent", "vital_interests", "public_task", "legal_obligation", "safeguarding",
    "prevention_of_crime", "court_order",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who recorded a governance event: a practitioner (account id, never a name) of an
    agency, an agency's own system, or an operator at the command line."""
    kind: str
    agency: str | None = None
    practitioner_id: str | None = None
    team_id: str | None = None
    operator: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"an actor is one of {', '.join(ACTOR_KINDS)}")

    @property
    def name(self) -> str:
        """How the record names them (an account id, an agency, an operator's own name)."""
        return self.practitioner_id or self.operator or self.agency or self.kind


# --- payloads, one per event type ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ConsentGiven:
    consent_id: str
    agencies: frozenset[str]      # empty: every agency
    categories: frozenset[str]    # empty: every category
    starts: datetime
    expires: datetime | None
    kind: str


@dataclass(frozen=True, slots=True)
class ConsentWithdrawn:
    consent_id: str


@dataclass(frozen=True, slots=True)
class AgreementMade:
    agreement_id: str
    agencies: frozenset[str]
    categories: frozenset[str]
    starts: datetime
    expires: datetime | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class AgreementEnded:
    agreement_id: str


@dataclass(frozen=True, slots=True)
class EpisodeOpened:
    episode_id: str
    coordinator_id: str
    coordinator_agency: str
    coordinator_team: str | None = None


@dataclass(frozen=True, slots=True)
class EpisodeClosed:
    episode_id: str


@dataclass(frozen=True, slots=True)
class AccessGranted:
    grant_id: str
    episode_id: str
    practitioner_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRevoked:
    grant_id: str


@dataclass(frozen=True, slots=True)
class EntryDisclosed:
    disclosure_id: str
    entry_agency: str
    entry_event_id: str
    to_agency: str
    legal_basis: str
    reason: str                   # free text: personal data, never logged


Payload = (ConsentGiven | ConsentWithdrawn | AgreementMade | AgreementEnded | EpisodeOpened
           | EpisodeClosed | AccessGranted | AccessRevoked | EntryDisclosed)

EVENT_TYPE: Final[dict[type, str]] = {
    ConsentGiven: "consent.given", ConsentWithdrawn: "consent.withdrawn",
    AgreementMade: "agreement.made", AgreementEnded: "agreement.ended",
    EpisodeOpened: "episode.opened", EpisodeClosed: "episode.closed",
    AccessGranted: "access.granted", AccessRevoked: "access.revoked",
    EntryDisclosed: "entry.disclosed",
}
PAYLOAD_OF: Final[dict[str, type]] = {v: k for k, v in EVENT_TYPE.items()}
#: Events about agencies rather than a person.
AGREEMENT_TYPES: Final = frozenset({"agreement.made", "agreement.ended"})


@dataclass(frozen=True, slots=True)
class GovernanceEvent:
    event_id: str
    recorded_at: datetime
    person_id: str | None            # None for an agreement
    actor: Actor
    payload: Payload

    @property
    def event_type(self) -> str:
        return EVENT_TYPE[type(self.payload)]


# --- a person's record -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Episode:
    episode_id: str
    coordinator_id: str
    coordinator_agency: str
    coordinator_team: str | None
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GrantRecord:
    grant_id: str
    episode_id: str
    practitioner_id: str | None
    team_id: str | None
    granted_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    consent_id: str
    consent: Consent
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class DisclosureRecord:
    disclosure: Disclosure
    entry_agency: str
    disclosure_id: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """Everything recorded about who may see a person's records, as of its last event."""
    consents: dict[str, ConsentRecord] = field(default_factory=dict)
    episodes: dict[str, Episode] = field(default_factory=dict)
    grants: dict[str, GrantRecord] = field(default_factory=dict)
    disclosures: dict[str, DisclosureRecord] = field(default_factory=dict)

    @property
    def open_episode(self) -> Episode | None:
        return next((e for e in self.episodes.values() if e.closed_at is None), None)

    @property
    def lead_professional(self) -> Episode | None:
        """The open episode, whose coordinator is the lead professional."""
        return self.open_episode


def _consent_given(r: PersonRecord, e: GovernanceEvent, p: ConsentGiven) -> PersonRecord:
    consent = Consent(p.agencies, p.categories, p.starts, p.expires, p.kind, e.actor.name)
    return dataclasses.replace(r, consents={**r.consents, p.consent_id: ConsentRecord(
        p.consent_id, consent, e.recorded_at)})


def _consent_withdrawn(r: PersonRecord, e: GovernanceEvent, p: ConsentWithdrawn
                       ) -> PersonRecord:
    found = r.consents.get(p.consent_id)
    if found is None or found.consent.withdrawn_at is not None:
        return r
    withdrawn = dataclasses.replace(found.consent, withdrawn_at=e.recorded_at)
    return dataclasses.replace(r, consents={**r.consents, p.consent_id: dataclasses.replace(
        found, consent=withdrawn)})


def _episode_opened(r: PersonRecord, e: GovernanceEvent, p: EpisodeOpened) -> PersonRecord:
    episode = Episode(p.episode_id, p.coordinator_id, p.coordinator_agency,
                      p.coordinator_team, e.recorded_at, e.actor.name)
    return dataclasses.replace(r, episodes={**r.episodes, p.episode_id: episode})


def _episode_closed(r: PersonRecord, e: GovernanceEvent, p: EpisodeClosed) -> PersonRecord:
    found = r.episodes.get(p.episode_id)
    if found is None or found.closed_at is not None:
        return r
    return dataclasses.replace(r, episodes={**r.episodes, p.episode_id: dataclasses.replace(
        found, closed_at=e.recorded_at)})


def _access_granted(r: PersonRecord, e: GovernanceEvent, p: AccessGranted) -> PersonRecord:
    grant = GrantRecord(p.grant_id, p.episode_id, p.practitioner_id, p.team_id,
                        e.recorded_at)
    return dataclasses.replace(r, grants={**r.grants, p.grant_id: grant})


def _access_revoked(r: PersonRecord, e: GovernanceEvent, p: AccessRevoked) -> PersonRecord:
    found = r.grants.get(p.grant_id)
    if found is None or found.revoked_at is not None:
        return r
    return dataclasses.replace(r, grants={**r.grants, p.grant_id: dataclasses.replace(
        found, revoked_at=e.recorded_at)})


def _entry_disclosed(r: PersonRecord, e: GovernanceEvent, p: EntryDisclosed) -> PersonRecord:
    disclosure = Disclosure(p.entry_event_id, p.to_agency, p.reason, p.legal_basis,
                            e.actor.name)
    return dataclasses.replace(r, disclosures={**r.disclosures, p.disclosure_id:
                                               DisclosureRecord(disclosure, p.entry_agency,
                                                                p.disclosure_id,
                                                                e.recorded_at)})


_FOLD: Final[dict[type, Callable[[PersonRecord, GovernanceEvent, object], PersonRecord]]] = {
    ConsentGiven: _consent_given,            # type: ignore[dict-item]
    ConsentWithdrawn: _consent_withdrawn,    # type: ignore[dict-item]
    EpisodeOpened: _episode_opened,          # type: ignore[dict-item]
    EpisodeClosed: _episode_closed,          # type: ignore[dict-item]
    AccessGranted: _access_granted,          # type: ignore[dict-item]
    AccessRevoked: _access_revoked,          # type: ignore[dict-item]
    EntryDisclosed: _entry_disclosed,        # type: ignore[dict-item]
}


def fold(record: PersonRecord, event: GovernanceEvent) -> PersonRecord:
    """The record after one more event (an agreement's events are not a person's)."""
    handler = _FOLD.get(type(event.payload))
    return record if handler is None else handler(record, event, event.payload)


def person_record(events: Iterable[GovernanceEvent]) -> PersonRecord:
    record = PersonRecord()
    for event in events:
        record = fold(record, event)
    return record


def agreements(events: Iterable[GovernanceEvent]) -> dict[str, Agreement]:
    """Every agreement ever made, with its end if it ended (``Agreement.shares`` tells
    whether it is in force at a moment)."""
    found: dict[str, Agreement] = {}
    for event in events:
        p = event.payload
        if isinstance(p, AgreementMade):
            found[p.agreement_id] = Agreement(p.agencies, p.categories, p.starts, p.expires)
        elif isinstance(p, AgreementEnded) and p.agreement_id in found:
            ended = found[p.agreement_id]
            if ended.ended_at is None:
                found[p.agreement_id] = dataclasses.replace(ended, ended_at=event.recorded_at)
    return found


def context(record: PersonRecord, agreements_: Iterable[Agreement]) -> Context:
    """What a read of the person is decided on: consents (each decides at the moment of
    reading), agreements, and the open episode's lead professional and live grants."""
    episode = record.open_episode
    grants = () if episode is None else tuple(
        Grant(g.practitioner_id, g.team_id) for g in record.grants.values()
        if g.episode_id == episode.episode_id and g.revoked_at is None)
    return Context(
        consents=tuple(c.consent for c in record.consents.values()),
        agreements=tuple(agreements_), grants=grants,
        disclosures=tuple(d.disclosure for d in record.disclosures.values()),
        lead_professional=None if episode is None else episode.coordinator_id)
