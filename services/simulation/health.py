"""Hospital and mental-health inpatient stays, and what should follow the discharge.

Mental-health discharges: care plan shared within 24 hours for 75%, follow-up within 72 hours
for 80% (late for 12%, never for 8%), the national picture being "most but not all".
Acute discharges of this population: 16% to no fixed abode or the street, a housing referral
(hospitals are under the duty to refer) for 55% of those.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.common.events import Contact, Transition
from services.simulation.agencies import local
from services.simulation.community import appointments
from services.simulation.recorder import Story
from services.simulation.referrals import refer

HOMELESS = frozenset({"NO_FIXED_ABODE", "ROUGH_SLEEPING"})
_MH_DISCHARGE_TO = (("SETTLED", 58), ("TEMPORARY", 12), ("SUPPORTED_HOUSING", 12),
                    ("NO_FIXED_ABODE", 10), ("ROUGH_SLEEPING", 2), ("UNKNOWN", 6))
_ACUTE_DISCHARGE_TO = (("SETTLED", 55), ("TEMPORARY", 12), ("SUPPORTED_HOUSING", 8),
                       ("NO_FIXED_ABODE", 12), ("ROUGH_SLEEPING", 4), ("UNKNOWN", 9))


def mental_health_stay(story: Story, at: datetime) -> datetime:
    """Admission to a ward, discharge, and the care that should follow. Returns the end."""
    rng = story.rng
    trust = local(story.person.area, "MENTAL_HEALTH")
    ward = f"{trust.agency_id}-ward-{rng.choice('ABCDEF')}"
    stay_id = story.new_id("ip")
    story.record(trust, "transition.occurred", at, Transition(
        stay_id, "MENTAL_HEALTH_ADMISSION", location=ward), team="inpatient-ward")
    days = min(120, max(3, int(rng.lognormvariate(3.2, 0.6))))  # median about 25 days
    discharge_day = at.date() + timedelta(days=days)
    scheduled_id = None
    if story.chance(0.6):  # a planned discharge, agreed at the ward round a few days before
        planned = (story.office_hours(discharge_day - timedelta(days=rng.randint(2, 7)))
                   if days > 8 else story.hours_later(at, 2, 24))
        scheduled_id = story.record(trust, "transition.scheduled", planned, Transition(
            stay_id, "MENTAL_HEALTH_DISCHARGE", scheduled_for=discharge_day, location=ward),
            team="inpatient-ward")
    discharged = story.office_hours(discharge_day)
    accommodation = story.pick(_MH_DISCHARGE_TO)
    discharge_id = story.record(trust, "transition.occurred", discharged, Transition(
        stay_id, "MENTAL_HEALTH_DISCHARGE", scheduled_for=discharge_day if scheduled_id else None,
        accommodation_on_leaving=accommodation, location=ward),
        team="inpatient-ward", causation_id=scheduled_id)
    r = rng.random()
    if r < 0.90:
        shared = (story.hours_later(discharged, 1, 23) if r < 0.75
                  else story.hours_later(discharged, 25, 120))
        story.record(trust, "contact.care_plan_shared", shared, Contact(story.new_id("con")),
                     team="inpatient-ward", causation_id=discharge_id)
    r = rng.random()
    if r < 0.92:
        follow_up = (story.hours_later(discharged, 4, 70) if r < 0.80
                     else story.hours_later(discharged, 74, 240))
        story.record(trust, "contact.follow_up", follow_up, Contact(
            story.new_id("con"), rng.choice(("FACE_TO_FACE", "FACE_TO_FACE", "PHONE"))),
            causation_id=discharge_id)
    if accommodation in HOMELESS and story.chance(0.65):
        refer(story, trust, "HOUSING", story.hours_later(discharged, -20, 48),
              "duty to refer: discharge from mental health ward",
              sender_team="inpatient-ward")
    return community_team(story, story.days_later(discharged, 10, 30))


def community_team(story: Story, at: datetime) -> datetime:
    """Care coordination by the community mental health team; three misses end in a
    disengagement discharge."""
    trust = local(story.person.area, "MENTAL_HEALTH")
    last, _ = appointments(story, trust, at, story.rng.randint(2, 8), (14, 35), 0.72)
    return last


def after_release_to_hospital(story: Story, released_at: datetime) -> datetime:
    """Released from prison straight to a secure or acute psychiatric ward."""
    return mental_health_stay(story, story.hours_later(released_at, 1, 4))


def hospital_stay(story: Story, at: datetime) -> datetime:
    """An emergency admission to the acute trust and a discharge, sometimes to the street."""
    rng = story.rng
    trust = local(story.person.area, "ACUTE_HOSPITAL")
    stay_id = story.new_id("adm")
    admitted = story.hours_later(at, 0, 24)
    story.record(trust, "transition.occurred", admitted, Transition(
        stay_id, "HOSPITAL_ADMISSION", location=f"{trust.agency_id}-emergency"))
    discharged = story.hours_later(admitted, 6, 24 * rng.randint(1, 12))
    accommodation = story.pick(_ACUTE_DISCHARGE_TO)
    story.record(trust, "transition.occurred", discharged, Transition(
        stay_id, "HOSPITAL_DISCHARGE", accommodation_on_leaving=accommodation,
        location=f"{trust.agency_id}-ward"))
    if accommodation in HOMELESS and story.chance(0.55):
        made = max(admitted + timedelta(hours=1), story.hours_later(discharged, -24, 48))
        refer(story, trust, "HOUSING", made, "duty to refer: discharge from hospital")
    if story.chance(0.1):  # care needs on discharge: a Care Act assessment
        refer(story, trust, "SOCIAL_CARE", story.hours_later(admitted, 2, 48),
              "care and support needs assessment")
    return discharged
