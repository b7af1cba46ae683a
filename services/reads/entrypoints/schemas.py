"""The read API's bodies. A withheld item keeps its id, date and kind of service, says it is
confidential, and its other fields are null: the reader knows something is there to ask
about, never what."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.events import IDENTIFIER_SCHEMES, SENSITIVITIES
from services.reads.domain.audit import PURPOSES
from services.reads.domain.governance import LEGAL_BASES
from services.reads.domain.views import Shown
from services.reads.domain.visibility import CONFIDENTIAL, CONSENT_KINDS

Purpose = Literal[PURPOSES]  # type: ignore[valid-type]
Scheme = Literal[IDENTIFIER_SCHEMES]  # type: ignore[valid-type]
Category = Literal[SENSITIVITIES]  # type: ignore[valid-type]
ConsentKind = Literal[CONSENT_KINDS]  # type: ignore[valid-type]
LegalBasis = Literal[LEGAL_BASES]  # type: ignore[valid-type]
AgencyId = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                                max_length=63)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- signing in ------------------------------------------------------------------------------

class SignIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PractitionerOut(BaseModel):
    practitioner_id: str
    username: str
    agency_id: str
    team_id: str | None
    role: str


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    practitioner: PractitionerOut


# --- finding a person ------------------------------------------------------------------------

class IdentifierSearch(Strict):
    """Identifiers go in the body, never in a URL (URLs end up in logs)."""
    scheme: Scheme
    value: str = Field(min_length=1, max_length=80,
                       description="a local id is your agency's unless given as agency/value")


class PersonFound(BaseModel):
    person_id: str = Field(description="the opaque person id every other call takes")


# --- what a reader is shown ------------------------------------------------------------------

class Item(BaseModel):
    id: str
    on: date = Field(description="the item's date (a confidential item shows only this, its "
                                 "kind of service and that it is confidential)")
    service_kind: str
    confidential: bool
    shown_because: str | None = Field(
        description="why the reader may see it (null when confidential)")


class TimelineEntryOut(Item):
    summary: str
    occurred_at: datetime | None = None
    recorded_at: datetime | None = None
    event_type: str | None = None
    agency: str | None = None
    category: str | None = None


class TimelinePage(BaseModel):
    items: list[TimelineEntryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class CaseloadItemOut(Item):
    agency: str | None = None
    active: bool | None = None
    since: datetime | None = None
    ended_reason: str | None = None


class ReferralOut(Item):
    referral_id: str | None = None
    from_agency: str | None = None
    to_agency: str | None = None
    to_service_kind: str | None = None
    status: str | None = None
    status_at: datetime | None = None
    made_at: datetime | None = None
    decline_reason: str | None = None
    cites_service_kind: str | None = None
    category: str | None = None


class ExpectationOut(Item):
    rule_id: str | None = None
    title: str | None = None
    expected: str | None = None
    due_at: datetime | None = None
    severity: str | None = None
    duty_team: str | None = None


class AlertOut(Item):
    rule_id: str | None = None
    severity: str | None = None
    duty_team: str | None = None
    title: str | None = None
    explanation: str | None = None
    expected: str | None = None
    source_reference: str | None = None
    status: str | None = None
    raised_at: datetime | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None
    historical: bool | None = Field(
        None, description="raised from an onboarding agency's history, its deadline past "
                          "before the agency joined: recorded, never sent to a duty team "
                          "(docs/backfill.md)")


class Referrals(BaseModel):
    items: list[ReferralOut]


class Expectations(BaseModel):
    items: list[ExpectationOut]


class Alerts(BaseModel):
    items: list[AlertOut]


class LeadProfessionalOut(BaseModel):
    practitioner_id: str
    username: str | None
    agency_id: str
    team_id: str | None
    episode_id: str
    since: datetime


class PersonSummary(BaseModel):
    person_id: str
    lead_professional: LeadProfessionalOut | None = Field(
        description="the coordinator of the open coordination episode: the single point of "
                    "contact")
    caseload: list[CaseloadItemOut] = Field(description="who works with the person now")
    governance: dict[str, list[dict[str, Any]]] = Field(
        description="consents, grants and disclosures: all of them for the lead professional "
                    "and information governance, otherwise those of the reader's agency")


class AccessLog(BaseModel):
    items: list[dict[str, Any]]


def item(model: type[Item], shown: Shown) -> Any:
    base: dict[str, Any] = {"id": shown.item_id, "on": shown.on,
                            "service_kind": shown.service_kind,
                            "confidential": shown.confidential,
                            "shown_because": None if shown.confidential else shown.because}
    if model is TimelineEntryOut and shown.confidential:
        base["summary"] = CONFIDENTIAL
    return model(**base, **shown.fields)


# --- governance actions ----------------------------------------------------------------------

class ConsentIn(Strict):
    agencies: list[AgencyId] = Field(default_factory=list, max_length=50,
                                description="who may see; empty: every agency")
    categories: list[Category] = Field(default_factory=list,
                                       description="which categories; empty: every one")
    starts: datetime | None = Field(None, description="default: now")
    expires: datetime | None = None
    kind: ConsentKind


class EpisodeIn(Strict):
    coordinator: str | None = Field(None, max_length=64,
                                    description="the lead professional's username (default: you)")


class GrantIn(Strict):
    practitioner: str | None = Field(None, max_length=64, description="a username")
    team_id: str | None = Field(None, max_length=130, description="agency/team")


class DisclosureIn(Strict):
    entry_event_id: str = Field(max_length=36)
    to_agency: AgencyId
    legal_basis: LegalBasis
    reason: str = Field(min_length=1, max_length=500)


class Recorded(BaseModel):
    event_id: str
    event_type: str
    recorded_at: datetime
    id: str = Field(description="the consent, episode, grant or disclosure id")
