"""What may be recorded on top of a person's record (or the agreements). Pure.

``refusal`` says why an event may not be recorded given the record so far, in words without
personal data (ids and codes only), or None: one open coordination episode at a time; only
its coordinator grants and revokes; only the agency that recorded an entry discloses it,
with a legal basis and a reason; consent within known categories and a period that ends
after it starts; agreements between two or more agencies, never for a restricted category.
One check per event type.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from services.common.events import SENSITIVITIES
from services.reads.domain.governance import (
    AGREEMENT_TYPES,
    LEGAL_BASES,
    AccessGranted,
    AccessRevoked,
    Actor,
    AgreementEnded,
    AgreementMade,
    ConsentGiven,
    ConsentWithdrawn,
    EntryDisclosed,
    Episode,
    EpisodeClosed,
    EpisodeOpened,
    GovernanceEvent,
    PersonRecord,
)
from services.reads.domain.visibility import CONSENT_KINDS, RESTRICTED, Agreement


def _categories_problem(categories: frozenset[str]) -> str | None:
    unknown = categories - set(SENSITIVITIES)
    return f"unknown categories: {', '.join(sorted(unknown))}" if unknown else None


def _period_problem(starts: datetime, expires: datetime | None) -> str | None:
    if expires is not None and expires <= starts:
        return "expires must be after starts"
    return None


def _is_coordinator(actor: Actor, episode: Episode) -> bool:
    return actor.kind == "practitioner" and actor.practitioner_id == episode.coordinator_id


Agreements = dict[str, Agreement]


def _consent_given_refusal(r: PersonRecord, e: GovernanceEvent, p: ConsentGiven,
                           a: Agreements) -> str | None:
    if p.consent_id in r.consents:
        return "a consent with this id is already recorded"
    if p.kind not in CONSENT_KINDS:
        return f"consent kind is one of {', '.join(CONSENT_KINDS)}"
    return _categories_problem(p.categories) or _period_problem(p.starts, p.expires)


def _consent_withdrawn_refusal(r: PersonRecord, e: GovernanceEvent, p: ConsentWithdrawn,
                               a: Agreements) -> str | None:
    found = r.consents.get(p.consent_id)
    if found is None:
        return "no such consent for this person"
    return "this consent is already withdrawn" if found.consent.withdrawn_at else None


def _episode_opened_refusal(r: PersonRecord, e: GovernanceEvent, p: EpisodeOpened,
                            a: Agreements) -> str | None:
    if r.open_episode is not None:
        return "a coordination episode is already open for this person (close it first)"
    return "an episode with this id is already recorded" if p.episode_id in r.episodes else None


def _episode_closed_refusal(r: PersonRecord, e: GovernanceEvent, p: EpisodeClosed,
                            a: Agreements) -> str | None:
    episode = r.open_episode
    if episode is None or episode.episode_id != p.episode_id:
        return "this episode is not the open one"
    if e.actor.kind != "operator" and not _is_coordinator(e.actor, episode):
        return "only the lead professional closes the episode"
    return None


def _access_granted_refusal(r: PersonRecord, e: GovernanceEvent, p: AccessGranted,
                            a: Agreements) -> str | None:
    episode = r.open_episode
    if episode is None or episode.episode_id != p.episode_id:
        return "access is granted within the open coordination episode"
    if not _is_coordinator(e.actor, episode):
        return "only the lead professional grants access"
    if (p.practitioner_id is None) == (p.team_id is None):
        return "a grant names one practitioner or one team"
    return "a grant with this id is already recorded" if p.grant_id in r.grants else None


def _access_revoked_refusal(r: PersonRecord, e: GovernanceEvent, p: AccessRevoked,
                            a: Agreements) -> str | None:
    grant = r.grants.get(p.grant_id)
    if grant is None:
        return "no such grant for this person"
    if grant.revoked_at is not None:
        return "this grant is already revoked"
    episode = r.episodes.get(grant.episode_id)
    if e.actor.kind != "operator" and (episode is None or not _is_coordinator(e.actor, episode)):
        return "only the lead professional revokes access"
    return None


def _entry_disclosed_refusal(r: PersonRecord, e: GovernanceEvent, p: EntryDisclosed,
                             a: Agreements) -> str | None:
    if e.actor.agency != p.entry_agency:
        return "only the agency that recorded an entry discloses it"
    if p.to_agency == p.entry_agency:
        return "a disclosure is to another agency"
    if p.legal_basis not in LEGAL_BASES:
        return f"legal basis is one of {', '.join(LEGAL_BASES)}"
    if not p.reason.strip():
        return "a disclosure records its reason"
    if p.disclosure_id in r.disclosures:
        return "a disclosure with this id is already recorded"
    return None


def _agreement_made_refusal(r: PersonRecord, e: GovernanceEvent, p: AgreementMade,
                            a: Agreements) -> str | None:
    if len(p.agencies) < 2:
        return "an agreement has at least two agencies"
    restricted = p.categories & RESTRICTED
    if restricted:
        return ("restricted categories are shared only with consent, a grant or a "
                f"disclosure, never by agreement: {', '.join(sorted(restricted))}")
    if not p.categories:
        return "an agreement names the categories it shares"
    if p.agreement_id in a:
        return "an agreement with this id is already recorded"
    return _categories_problem(p.categories) or _period_problem(p.starts, p.expires)


def _agreement_ended_refusal(r: PersonRecord, e: GovernanceEvent, p: AgreementEnded,
                             a: Agreements) -> str | None:
    found = a.get(p.agreement_id)
    if found is None:
        return "no such agreement"
    return "this agreement has already ended" if found.ended_at is not None else None


_REFUSALS: Final[dict[type, Callable[[PersonRecord, GovernanceEvent, object, Agreements],
                                     str | None]]] = {
    ConsentGiven: _consent_given_refusal,            # type: ignore[dict-item]
    ConsentWithdrawn: _consent_withdrawn_refusal,    # type: ignore[dict-item]
    EpisodeOpened: _episode_opened_refusal,          # type: ignore[dict-item]
    EpisodeClosed: _episode_closed_refusal,          # type: ignore[dict-item]
    AccessGranted: _access_granted_refusal,          # type: ignore[dict-item]
    AccessRevoked: _access_revoked_refusal,          # type: ignore[dict-item]
    EntryDisclosed: _entry_disclosed_refusal,        # type: ignore[dict-item]
    AgreementMade: _agreement_made_refusal,          # type: ignore[dict-item]
    AgreementEnded: _agreement_ended_refusal,        # type: ignore[dict-item]
}


def refusal(record: PersonRecord, event: GovernanceEvent,
            known_agreements: Agreements | None = None) -> str | None:
    """Why ``event`` may not be recorded on top of ``record`` (and the agreements so far),
    or None. The words hold ids and codes only."""
    if event.event_type not in AGREEMENT_TYPES and not event.person_id:
        return "a person's governance event names the person"
    if event.event_type in AGREEMENT_TYPES and event.person_id:
        return "an agreement is between agencies, not about a person"
    return _REFUSALS[type(event.payload)](record, event, event.payload, known_agreements or {})
