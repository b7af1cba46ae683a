"""Agency events as plain frozen dataclasses, mirroring ``schemas/agency_event.v*.avsc``.

Every family shares one envelope (:class:`AgencyEvent`); the family-specific facts are in
``payload``. ``event_type`` is ``"<family>.<action>"`` (``referral.declined``,
``transition.occurred``, ``discharge.disengaged``, ``contact.follow_up``...).

The vocabularies below are the contract: the Avro schema uses the same symbols, and
``tests/unit/schemas`` keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

# --- vocabularies ---------------------------------------------------------------------------

REFERRAL_ACTIONS: Final = ("made", "acknowledged", "accepted", "declined", "withdrawn", "closed")
TRANSITION_ACTIONS: Final = ("scheduled", "occurred", "cancelled")
DISCHARGE_ACTIONS: Final = (
    "completed", "planned", "disengaged", "excluded", "moved_away", "transferred", "died",
)
CONTACT_ACTIONS: Final = ("attended", "missed", "follow_up", "care_plan_shared")
#: The agency_event schema version writers use now (schemas/agency_event.v3.avsc).
SCHEMA_VERSION: Final = 3

#: An agency's notice about its own records of a person (HMPPS's prisoner-merged is "merged").
IDENTITY_ACTIONS: Final = ("merged", "unmerged")

EVENT_TYPES: Final[frozenset[str]] = frozenset(
    [f"referral.{a}" for a in REFERRAL_ACTIONS]
    + [f"transition.{a}" for a in TRANSITION_ACTIONS]
    + [f"discharge.{a}" for a in DISCHARGE_ACTIONS]
    + [f"contact.{a}" for a in CONTACT_ACTIONS]
    + [f"identity.{a}" for a in IDENTITY_ACTIONS]
)

#: Kinds of service an agency runs. Referrals name the kind they are sent to; rules route on it.
SERVICE_KINDS: Final = (
    "PRISON", "PROBATION", "ACUTE_HOSPITAL", "MENTAL_HEALTH", "HOUSING", "SUBSTANCE_USE",
    "SOCIAL_CARE", "LEAVING_CARE", "VOLUNTARY", "PRIMARY_CARE", "POLICE", "MARAC", "OTHER",
)

TRANSITION_KINDS: Final = (
    "PRISON_RELEASE", "PRISON_RECEPTION", "HOSPITAL_ADMISSION", "HOSPITAL_DISCHARGE",
    "MENTAL_HEALTH_ADMISSION", "MENTAL_HEALTH_DISCHARGE", "LEAVING_CARE",
    "ACCOMMODATION_CHANGE", "LEAD_PROFESSIONAL_CHANGE",
)

#: HMPPS release reasons; only some of them are a real release into the community.
RELEASE_REASONS: Final = (
    "RELEASED", "RELEASED_TO_HOSPITAL", "TEMPORARY_ABSENCE_RELEASE", "SENT_TO_COURT",
    "TRANSFERRED",
)

ACCOMMODATION_STATUSES: Final = (
    "SETTLED", "TEMPORARY", "APPROVED_PREMISES", "SUPPORTED_HOUSING", "NO_FIXED_ABODE",
    "ROUGH_SLEEPING", "UNKNOWN",
)
SETTLED_ACCOMMODATION: Final = frozenset({"SETTLED", "SUPPORTED_HOUSING", "APPROVED_PREMISES"})

SENSITIVITIES: Final = (
    "GENERAL", "HEALTH", "MENTAL_HEALTH", "SUBSTANCE_USE", "SEXUAL_HEALTH", "DOMESTIC_ABUSE",
    "CRIMINAL_JUSTICE",
)

#: Identifier schemes, strongest first (see ``strongest_identifier``).
IDENTIFIER_SCHEMES: Final = ("nhs_number", "noms_number", "crn", "pnc_id", "local_id")

#: Why a service declined a referral. CITES_OTHER_NEED_FIRST means "another need must be met
#: first" and names that need in ``cites_service_kind`` (the "stuck between services" rule).
DECLINE_REASONS: Final = (
    "NOT_ELIGIBLE", "CAPACITY", "CITES_OTHER_NEED_FIRST", "DUPLICATE", "OUT_OF_AREA",
    "PERSON_DECLINED", "OTHER",
)


# --- envelope parts --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Identifier:
    scheme: str
    value: str


@dataclass(frozen=True, slots=True)
class Source:
    """Who published the fact: the agency (its registered id), its kind of service, its system."""

    agency: str
    service_kind: str
    system: str
    team: str | None = None
    area: str | None = None  # local authority area code, used to route to area duty teams


# --- payloads --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Referral:
    referral_id: str
    to_agency: str
    to_service_kind: str
    reason: str | None = None
    decline_reason: str | None = None        # one of DECLINE_REASONS, on referral.declined
    cites_service_kind: str | None = None    # the other need a decline names
    decided_by: str | None = None            # role or team that decided, never a person's name
    sla_working_days: int | None = None      # the referrer's requested answer time
    outcome: str | None = None               # on referral.closed


@dataclass(frozen=True, slots=True)
class Transition:
    transition_id: str
    kind: str
    scheduled_for: date | None = None
    reason: str | None = None                # e.g. an HMPPS release reason
    accommodation_on_leaving: str | None = None
    location: str | None = None              # prison, ward or hospital code, never an address
    in_custody_treatment: bool | None = None  # was in substance-misuse treatment in custody


@dataclass(frozen=True, slots=True)
class Discharge:
    episode_id: str | None = None
    destination_service_kind: str | None = None  # on discharge.transferred
    accommodation_on_leaving: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    contact_id: str
    mode: str | None = None                  # FACE_TO_FACE, PHONE, VIDEO...
    referral_id: str | None = None           # the referral the contact answers, if any


@dataclass(frozen=True, slots=True)
class IdentityNotice:
    """``identity.merged``: the record this names is a duplicate of the one the event's
    identifiers name, so the two are one person (HMPPS's prisoner-merged: the removed NOMS
    number here, the kept one in the identifiers); ``identity.unmerged``: they are not. The
    person index takes it as a link or unlink asserted by the publishing agency."""
    other_scheme: str
    other_value: str                         # an identifier value: personal data


Payload = Referral | Transition | Discharge | Contact | IdentityNotice

PAYLOAD_BY_FAMILY: Final[dict[str, type]] = {
    "referral": Referral,
    "transition": Transition,
    "discharge": Discharge,
    "contact": Contact,
    "identity": IdentityNotice,
}


@dataclass(frozen=True, slots=True)
class AgencyEvent:
    event_id: str                    # UUID set by the producer: the idempotency key
    event_type: str                  # "<family>.<action>"
    occurred_at: datetime            # when it happened in the world (tz-aware UTC)
    recorded_at: datetime            # when the agency system recorded it
    source: Source
    identifiers: tuple[Identifier, ...]
    payload: Payload
    sensitivity: str = "GENERAL"
    schema_version: int = SCHEMA_VERSION
    causation_id: str | None = None  # v2: the event this one answers (e.g. the referral made)
    extra: dict[str, str] = field(default_factory=dict)  # free additionalInformation
    #: The opaque person id the identity step resolved the identifiers to (set by whoever
    #: read the event from the person-events topic; empty before resolution). Not part of
    #: the agency's event: the same fact resolves to another person id after an unlink.
    person_key: str = field(default="", compare=False)
    #: Its personal fields could not be opened: the person's data key was destroyed (they
    #: were erased). Set by whoever opened the sealed event; the read models show it as such.
    erased: bool = field(default=False, compare=False)
    # Derived once: the identity step and the partitioner ask for it.
    _strongest: Identifier = field(init=False, repr=False, compare=False,
                                   default=Identifier("", ""))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_strongest", strongest_identifier(self.identifiers))

    @property
    def family(self) -> str:
        return self.event_type.split(".", 1)[0]

    @property
    def action(self) -> str:
        return self.event_type.split(".", 1)[1]

    @property
    def strongest(self) -> Identifier:
        """The event's strongest identifier (personal data: never a key, never logged)."""
        return self._strongest

    @property
    def identifier_key(self) -> str:
        """``scheme:value`` of the strongest identifier: how agencies' own records group
        events (personal data, for tests and the simulator; joinedup keys by person id)."""
        return f"{self._strongest.scheme}:{self._strongest.value}"

    def for_person(self, person_id: str) -> AgencyEvent:
        """This event filed under the person id its identifiers resolve to."""
        return dataclasses.replace(self, person_key=person_id)


def strongest_identifier(identifiers: tuple[Identifier, ...] | list[Identifier]
                         ) -> Identifier:
    """The identifier that names the person first: the earliest scheme of
    ``IDENTIFIER_SCHEMES`` (ties: the lower value), so every reader picks the same one."""
    if not identifiers:
        raise ValueError("an event must carry at least one person identifier")
    if len(identifiers) == 1:
        return identifiers[0]
    return min(identifiers, key=lambda i: (_RANK.get(i.scheme, len(_RANK)), i.value))


_RANK: Final = {scheme: i for i, scheme in enumerate(IDENTIFIER_SCHEMES)}
