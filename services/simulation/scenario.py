"""Hand-written scenarios for the demo: one made-up person each, a few weeks of their life as
the agencies record it. Identifiers are synthetic (NHS numbers from the never-issued 999 test
range); nothing here is about a real person.

``scenario(name, start)`` returns the events sorted by recorded_at; ``SCENARIOS`` names them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta

from services.common.events import (
    SCHEMA_VERSION,
    AgencyEvent,
    Contact,
    Discharge,
    Payload,
    Referral,
    Transition,
)
from services.common.identifiers import pnc_check_character
from services.simulation.agencies import AGENCY_BY_ID, LEEDS
from services.simulation.people import Person
from services.simulation.recorder import about, as_utc_seconds, stricter

_NAMESPACE = uuid.UUID("5d0c6e4e-3f55-4f43-9a39-7a8f0f3c2b11")  # joinedup scenarios


class _Script:
    """One person's events, written by hand with day offsets from the start."""

    def __init__(self, name: str, number: int, nhs_number: str, start: datetime) -> None:
        self.name, self.start = name, as_utc_seconds(start)
        # Z-prefixed NOMS numbers and CRNs, apart from the simulated population's.
        self.person = Person(
            index=900_000 + number, nhs_number=nhs_number, noms_number=f"Z{9000 + number}SC",
            crn=f"Z{900_000 + number}", pnc_id=f"2019/{number:07d}{pnc_check_character(2019, number)}",
            area=LEEDS, born=date(1990, 6, 1), offending=True, mental_health=True,
            substance_use=True, domestic_abuse=False, care_leaver=False)
        self.events: list[AgencyEvent] = []

    def day(self, days: float, hour: int = 10, minute: int = 0) -> datetime:
        return self.start.replace(hour=hour, minute=minute, second=0) + timedelta(days=days)

    def add(self, agency_id: str, event_type: str, at: datetime, payload: Payload, *,
            delay_minutes: int = 25, about_kind: str | None = None,
            causation_id: str | None = None) -> str:
        agency = AGENCY_BY_ID[agency_id]
        event_id = str(uuid.uuid5(_NAMESPACE, f"{self.name}:{len(self.events)}"))
        sensitivity = stricter(agency.sensitivity, about(about_kind or agency.service_kind))
        self.events.append(AgencyEvent(
            event_id, event_type, at, at + timedelta(minutes=delay_minutes),
            agency.source(self.person.area), self.person.identifiers(agency), payload,
            sensitivity, SCHEMA_VERSION, causation_id))
        return event_id

    def referral(self, sender: str, receiver: str, action: str, at: datetime, rid: str,
                 **fields: object) -> str:
        kind = AGENCY_BY_ID[receiver].service_kind
        source = sender if action in ("made", "withdrawn") else receiver
        return self.add(source, f"referral.{action}", at,
                        Referral(rid, receiver, kind, **fields),  # type: ignore[arg-type]
                        about_kind=kind)

    def sorted(self) -> list[AgencyEvent]:
        return sorted(self.events, key=lambda e: e.recorded_at)


def released_to_no_fixed_abode(start: datetime) -> list[AgencyEvent]:
    """Release date set 40 days ahead, housing told 9 days before the gate, out with nowhere to
    go; treated for opiate use in custody, first community appointment missed on day 25."""
    s = _Script("released-to-no-fixed-abode", 1, "9991001379", start)
    release = s.day(40, 8, 30)
    sched = s.add("hmp-leeds", "transition.scheduled", s.day(0), Transition(
        "rel-s1", "PRISON_RELEASE", scheduled_for=release.date(), location="hmp-leeds",
        in_custody_treatment=True))
    s.referral("hmp-leeds", "housing-leeds", "made", s.day(31, 15), "ref-s1",
               reason="duty to refer: release from custody", sla_working_days=5)
    s.referral("hmp-leeds", "housing-leeds", "acknowledged", s.day(34, 11), "ref-s1")
    s.add("hmp-leeds", "transition.occurred", release, Transition(
        "rel-s1", "PRISON_RELEASE", scheduled_for=release.date(), reason="RELEASED",
        accommodation_on_leaving="NO_FIXED_ABODE", location="hmp-leeds",
        in_custody_treatment=True), causation_id=sched, delay_minutes=12)
    s.add("probation-north", "contact.attended", s.day(40, 14), Contact("con-s1", "FACE_TO_FACE"))
    s.add("probation-north", "contact.missed", s.day(47, 11), Contact("con-s2", "FACE_TO_FACE"))
    s.add("recovery-leeds", "contact.missed", s.day(65, 10), Contact("con-s3", "FACE_TO_FACE"))
    return s.sorted()


def psychiatric_discharge_without_follow_up(start: datetime) -> list[AgencyEvent]:
    """Discharged from a ward to a hostel; the care plan goes out a day late and
    nobody follows up; three weeks later the community team discharges for non-attendance."""
    s = _Script("psychiatric-discharge-without-follow-up", 2, "9991001743", start)
    ward = "mh-trust-leeds-ward-C"
    s.add("mh-trust-leeds", "transition.occurred", s.day(0, 22, 40), Transition(
        "ip-s2", "MENTAL_HEALTH_ADMISSION", location=ward), delay_minutes=95)
    planned = s.add("mh-trust-leeds", "transition.scheduled", s.day(24, 11), Transition(
        "ip-s2", "MENTAL_HEALTH_DISCHARGE", scheduled_for=s.day(28).date(), location=ward))
    discharged = s.add("mh-trust-leeds", "transition.occurred", s.day(28, 15, 30), Transition(
        "ip-s2", "MENTAL_HEALTH_DISCHARGE", scheduled_for=s.day(28).date(),
        accommodation_on_leaving="TEMPORARY", location=ward), causation_id=planned)
    s.add("mh-trust-leeds", "contact.care_plan_shared", s.day(29, 21), Contact("con-s4"),
          causation_id=discharged, delay_minutes=600)
    s.add("mh-trust-leeds", "contact.missed", s.day(42, 14), Contact("con-s5", "FACE_TO_FACE"))
    s.add("mh-trust-leeds", "discharge.disengaged", s.day(49, 12), Discharge("epi-s2"))
    return s.sorted()


def stuck_between_services(start: datetime) -> list[AgencyEvent]:
    """The drop-in refers for mental health and for drug use; each service says the other
    must act first, twice over."""
    s = _Script("stuck-between-services", 3, "9991002111", start)
    for round_, day in ((1, 0), (2, 30)):
        mh, su = f"ref-s3-mh{round_}", f"ref-s3-su{round_}"
        s.referral("open-door-leeds", "mh-trust-leeds", "made", s.day(day, 11), mh,
                   reason="low mood, self-harm", sla_working_days=10)
        s.referral("open-door-leeds", "mh-trust-leeds", "declined", s.day(day + 6, 15), mh,
                   decline_reason="CITES_OTHER_NEED_FIRST", cites_service_kind="SUBSTANCE_USE",
                   decided_by="single-point-of-access")
        s.referral("open-door-leeds", "recovery-leeds", "made", s.day(day + 8, 10), su,
                   reason="drug use, low mood", sla_working_days=5)
        s.referral("open-door-leeds", "recovery-leeds", "declined", s.day(day + 13, 14), su,
                   decline_reason="CITES_OTHER_NEED_FIRST", cites_service_kind="MENTAL_HEALTH",
                   decided_by="recovery-hub-triage")
    s.add("open-door-leeds", "contact.attended", s.day(50, 12), Contact("con-s6", "DROP_IN"))
    return s.sorted()


def leaving_care_without_pathway(start: datetime) -> list[AgencyEvent]:
    """Turns 18 on day 20 with no referral to adult services or housing."""
    s = _Script("leaving-care-without-pathway", 4, "9991002480", start)
    birthday = s.day(20).date()
    planned = s.add("leaving-care-leeds", "transition.scheduled", s.day(0, 14), Transition(
        "care-s4", "LEAVING_CARE", scheduled_for=birthday))
    s.add("leaving-care-leeds", "transition.occurred", s.day(20, 9), Transition(
        "care-s4", "LEAVING_CARE", scheduled_for=birthday), causation_id=planned)
    s.add("leaving-care-leeds", "contact.missed", s.day(34, 15), Contact("con-s7", "FACE_TO_FACE"))
    return s.sorted()


def referral_never_answered(start: datetime) -> list[AgencyEvent]:
    """Probation refers to housing; the referral is never acknowledged."""
    s = _Script("referral-never-answered", 5, "9991002855", start)
    s.referral("probation-north", "housing-leeds", "made", s.day(0, 16), "ref-s5",
               reason="sofa surfing, asked to leave", sla_working_days=5)
    s.add("probation-north", "contact.attended", s.day(14, 10), Contact("con-s8", "FACE_TO_FACE"))
    return s.sorted()


def joined_up_release(start: datetime) -> list[AgencyEvent]:
    """The path that works, for contrast: housing referral 70 days ahead, accepted, released
    to approved premises, treatment appointment on day 6 after release."""
    s = _Script("joined-up-release", 6, "9991003223", start)
    release = s.day(90, 8, 15)
    sched = s.add("hmp-leeds", "transition.scheduled", s.day(0), Transition(
        "rel-s6", "PRISON_RELEASE", scheduled_for=release.date(), location="hmp-leeds",
        in_custody_treatment=True))
    s.referral("hmp-leeds", "housing-leeds", "made", s.day(20, 14), "ref-s6",
               reason="duty to refer: release from custody", sla_working_days=5)
    s.referral("hmp-leeds", "housing-leeds", "acknowledged", s.day(21, 10), "ref-s6")
    s.referral("hmp-leeds", "housing-leeds", "accepted", s.day(27, 12), "ref-s6",
               decided_by="housing-options-triage")
    s.referral("hmp-leeds", "recovery-leeds", "made", s.day(75, 11), "ref-s6b",
               reason="continuity of care on release from custody", sla_working_days=5)
    s.referral("hmp-leeds", "recovery-leeds", "accepted", s.day(77, 15), "ref-s6b",
               decided_by="recovery-hub-triage")
    s.add("hmp-leeds", "transition.occurred", release, Transition(
        "rel-s6", "PRISON_RELEASE", scheduled_for=release.date(), reason="RELEASED",
        accommodation_on_leaving="APPROVED_PREMISES", location="hmp-leeds",
        in_custody_treatment=True), causation_id=sched)
    s.add("probation-north", "contact.attended", s.day(90, 13), Contact("con-s9", "FACE_TO_FACE"))
    s.add("recovery-leeds", "contact.attended", s.day(96, 10),
          Contact("con-s10", "FACE_TO_FACE", "ref-s6b"))
    return s.sorted()


SCENARIOS: dict[str, Callable[[datetime], list[AgencyEvent]]] = {
    "released-to-no-fixed-abode": released_to_no_fixed_abode,
    "psychiatric-discharge-without-follow-up": psychiatric_discharge_without_follow_up,
    "stuck-between-services": stuck_between_services,
    "leaving-care-without-pathway": leaving_care_without_pathway,
    "referral-never-answered": referral_never_answered,
    "joined-up-release": joined_up_release,
}


def scenario(name: str, start: datetime) -> list[AgencyEvent]:
    try:
        build = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return build(start)
