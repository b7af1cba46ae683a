"""The simulated agencies: two local areas (Leeds, Manchester), each with its own local services,
plus two prisons and one probation region that serve both.

Names are made up (no real team or person); area codes are the real ONS local authority codes,
because rules route alerts to the housing team of an area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from services.common.events import Source

LEEDS: Final = "E08000035"
MANCHESTER: Final = "E08000003"
AREAS: Final = (LEEDS, MANCHESTER)

#: What an agency's events reveal about a person, by kind of service. Housing, social care,
#: leaving care and voluntary records are ordinary personal data.
SENSITIVITY_BY_KIND: Final = {
    "PRISON": "CRIMINAL_JUSTICE",
    "PROBATION": "CRIMINAL_JUSTICE",
    "ACUTE_HOSPITAL": "HEALTH",
    "MENTAL_HEALTH": "MENTAL_HEALTH",
    "SUBSTANCE_USE": "SUBSTANCE_USE",
    "MARAC": "DOMESTIC_ABUSE",
}


@dataclass(frozen=True, slots=True)
class Agency:
    agency_id: str
    name: str
    service_kind: str
    system: str
    area: str | None  # None: a regional service, which records the person's area per event
    team: str

    @property
    def sensitivity(self) -> str:
        return SENSITIVITY_BY_KIND.get(self.service_kind, "GENERAL")

    def source(self, area: str | None = None, team: str | None = None) -> Source:
        return Source(self.agency_id, self.service_kind, self.system, team or self.team,
                      self.area or area)


_PRISONS = [
    Agency("hmp-leeds", "HMP Leeds", "PRISON", "NOMIS", LEEDS, "offender-management-unit"),
    Agency("hmp-manchester", "HMP Manchester", "PRISON", "NOMIS", MANCHESTER,
           "offender-management-unit"),
]
_PROBATION = Agency("probation-north", "Probation Service, North region", "PROBATION", "nDelius",
                    None, "probation-delivery-unit")

# (service kind, id stem, name, team, system in Leeds, system in Manchester)
_LOCAL = [
    ("ACUTE_HOSPITAL", "acute", "Teaching Hospitals NHS Trust", "discharge-team",
     "Cerner Millennium", "Epic"),
    ("MENTAL_HEALTH", "mh-trust", "Mental Health NHS Trust", "community-mental-health",
     "RiO", "PARIS"),
    ("HOUSING", "housing", "City Council housing options", "housing-options",
     "Northgate", "Civica"),
    ("SUBSTANCE_USE", "recovery", "Drug and alcohol recovery service", "recovery-hub",
     "Nebula", "Nebula"),
    ("SOCIAL_CARE", "adult-social-care", "Adult social care", "first-contact",
     "Mosaic", "Liquidlogic"),
    ("LEAVING_CARE", "leaving-care", "Leaving care service", "personal-advisers",
     "Mosaic", "Liquidlogic"),
    ("VOLUNTARY", "open-door", "Open Door (voluntary sector)", "drop-in",
     "Inform CRM", "Inform CRM"),
    ("MARAC", "marac", "Multi-agency risk assessment conference", "marac-coordinator",
     "MARAC register", "MARAC register"),
]


def _local_agencies() -> list[Agency]:
    agencies = []
    for area, town in ((LEEDS, "leeds"), (MANCHESTER, "manchester")):
        for kind, stem, name, team, leeds_system, manchester_system in _LOCAL:
            system = leeds_system if area == LEEDS else manchester_system
            agencies.append(Agency(f"{stem}-{town}", f"{town.title()} {name}", kind, system,
                                   area, team))
    return agencies


AGENCIES: Final[list[Agency]] = [*_PRISONS, _PROBATION, *_local_agencies()]
AGENCY_BY_ID: Final = {a.agency_id: a for a in AGENCIES}
PRISONS: Final = tuple(_PRISONS)
PROBATION: Final = _PROBATION
_LOCAL_BY_AREA_KIND: Final = {(a.area, a.service_kind): a for a in AGENCIES if a.area}


def local(area: str, service_kind: str) -> Agency:
    """The area's agency of that kind (prisons: the area's prison; probation: the region)."""
    if service_kind == "PROBATION":
        return _PROBATION
    return _LOCAL_BY_AREA_KIND[(area, service_kind)]
