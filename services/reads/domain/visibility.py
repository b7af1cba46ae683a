"""Who may see a timeline entry's content. Pure: plain data in, a decision out.

An entry is always visible to the agency that recorded it (and to the other party of a
referral), except that business-support staff never see restricted content. For anyone else:

- an entry of a *restricted* category (sexual health, substance use, domestic abuse,
  mental health: special-category data whose disclosure harms, and a refuge's location
  above all) is visible only by one of these, checked in this order:
  1. a case-by-case *disclosure* of that very entry to the reader's agency (with its reason
     and legal basis, recorded by the practitioner who disclosed it);
  2. the open coordination episode: its coordinator (the lead professional) sees the
     person's entries, and so does whoever they *grant* access to, by name or by team,
     until the grant is revoked or the episode closes;
  3. the person's *consent* in force at the moment of reading (given, not withdrawn, not
     expired, covering the reader's agency and the entry's category);
- an entry of any other category is visible under a *sharing agreement* in force between
  the two agencies covering its category, or by any of the above.

Everything else is *Confidential*: the reader learns that something was recorded, when,
and by what kind of service, never what (``shown``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

#: Categories hidden outside the recording agency unless something opens them for the reader.
RESTRICTED: Final = frozenset({"SEXUAL_HEALTH", "SUBSTANCE_USE", "DOMESTIC_ABUSE",
                               "MENTAL_HEALTH"})
CONSENT_KINDS: Final = ("explicit", "informed", "implicit")
CONFIDENTIAL: Final = "Confidential"
#: A practitioner's role. Business support (administration, reception) handles a case's
#: logistics and sees no restricted content, its own agency's included; information
#: governance staff answer audits and subject-access requests; operations staff run the
#: streams (dead letters, what-if, explain, investigations) and read no person's record through
#: the people routes beyond what any reader of their agency may.
ROLES: Final = ("practitioner", "business_support", "information_governance", "operations")
#: How an agency's own system reads (with its agency credentials): as its agency.
AGENCY_SYSTEM: Final = "agency_system"


@dataclass(frozen=True, slots=True)
class Reader:
    agency: str
    team: str | None = None
    practitioner: str | None = None   # an account id, never a name
    role: str = "practitioner"


@dataclass(frozen=True, slots=True)
class Entry:
    event_id: str
    agency: str                       # the agency that recorded it
    service_kind: str
    sensitivity: str
    occurred_at: datetime
    summary: str
    #: other agencies that see it as their own (a referral's receiving agency)
    parties: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Consent:
    """The person's consent as recorded (given, later perhaps withdrawn), with its scope."""
    agencies: frozenset[str]          # who may see; empty: every agency
    categories: frozenset[str]        # what; empty: every category
    starts: datetime
    expires: datetime | None
    kind: str                         # explicit, informed, implicit
    recorded_by: str
    withdrawn_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in CONSENT_KINDS:
            raise ValueError(f"consent is one of {', '.join(CONSENT_KINDS)}")

    def grants(self, agency: str, category: str, at: datetime) -> bool:
        return (self.starts <= at and (self.expires is None or at < self.expires)
                and (self.withdrawn_at is None or at < self.withdrawn_at)
                and (not self.agencies or agency in self.agencies)
                and (not self.categories or category in self.categories))


@dataclass(frozen=True, slots=True)
class Agreement:
    """Pre-planned sharing between agencies, for some categories (never restricted ones:
    those need the person's consent, a grant or a disclosure)."""
    agencies: frozenset[str]          # the parties
    categories: frozenset[str]
    starts: datetime | None = None
    expires: datetime | None = None
    ended_at: datetime | None = None

    def shares(self, between: frozenset[str], category: str, at: datetime) -> bool:
        return (between <= self.agencies and category in self.categories
                and (self.starts is None or self.starts <= at)
                and (self.expires is None or at < self.expires)
                and (self.ended_at is None or at < self.ended_at))


@dataclass(frozen=True, slots=True)
class Grant:
    """The lead professional's: a named practitioner or a team may see restricted entries."""
    practitioner: str | None
    team: str | None
    revoked: bool = False

    def covers(self, reader: Reader) -> bool:
        return not self.revoked and (
            (self.practitioner is not None and self.practitioner == reader.practitioner)
            or (self.team is not None and self.team == reader.team))


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One entry disclosed to one agency, case by case."""
    event_id: str
    to_agency: str
    reason: str
    legal_basis: str
    by: str


@dataclass(frozen=True, slots=True)
class Context:
    """What is on record about the person when the reader reads."""
    consents: tuple[Consent, ...] = ()
    agreements: tuple[Agreement, ...] = ()
    grants: tuple[Grant, ...] = ()    # of the open coordination episode only
    disclosures: tuple[Disclosure, ...] = ()
    lead_professional: str | None = None  # the open episode's coordinator (account id)


@dataclass(frozen=True, slots=True)
class Decision:
    visible: bool
    because: str                      # for the audit: why it was shown or withheld


#: Why an entry was shown or withheld: the access audit records these words.
OWN_AGENCY: Final = "recorded by the reader's agency"
DISCLOSED: Final = "disclosed to the reader's agency"
LEAD_PROFESSIONAL: Final = "the reader is the lead professional"
GRANTED: Final = "granted by the lead professional"
CONSENTED: Final = "the person's consent"
AGREED: Final = "a sharing agreement"
WITHHELD_RESTRICTED: Final = "restricted"
WITHHELD_NO_BASIS: Final = "no agreement or consent"
WITHHELD_ROLE: Final = "restricted: not shown to business support"


def decide(entry: Entry, reader: Reader, context: Context, at: datetime) -> Decision:
    restricted = entry.sensitivity in RESTRICTED
    if restricted and reader.role == "business_support":
        return Decision(False, WITHHELD_ROLE)
    if entry.agency == reader.agency or reader.agency in entry.parties:
        return Decision(True, OWN_AGENCY)
    if any(d.event_id == entry.event_id and d.to_agency == reader.agency
           for d in context.disclosures):
        return Decision(True, DISCLOSED)
    # The lead professional, and those they grant access to, see the person's entries while
    # the episode is open: restricted ones (what the grant is for) and, a fortiori, others.
    if reader.practitioner is not None and reader.practitioner == context.lead_professional:
        return Decision(True, LEAD_PROFESSIONAL)
    if any(g.covers(reader) for g in context.grants):
        return Decision(True, GRANTED)
    if any(c.grants(reader.agency, entry.sensitivity, at) for c in context.consents):
        return Decision(True, CONSENTED)
    if not restricted and any(a.shares(frozenset({entry.agency, reader.agency}),
                                       entry.sensitivity, at) for a in context.agreements):
        return Decision(True, AGREED)
    return Decision(False, WITHHELD_RESTRICTED if restricted else WITHHELD_NO_BASIS)


def shown(entry: Entry, decision: Decision) -> Entry:
    """The entry as the reader gets it: whole, or "Confidential" with its date and the
    kind of service that recorded it (no agency, no category, no content)."""
    if decision.visible:
        return entry
    return replace(entry, agency="", sensitivity=CONFIDENTIAL, summary=CONFIDENTIAL,
                   parties=frozenset())


def filtered(entries: Iterable[Entry], reader: Reader, context: Context, at: datetime
             ) -> list[tuple[Entry, Decision]]:
    """Every entry as shown to the reader, with the decision (the audit records both)."""
    out = []
    for entry in entries:
        decision = decide(entry, reader, context, at)
        out.append((shown(entry, decision), decision))
    return out
