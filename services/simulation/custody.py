"""A custodial sentence and the release that ends it: the transition where people are most often
lost (no accommodation on the day, no drug treatment in the community, no answer from housing).

Proportions: a duty-to-refer housing referral at least 56 days before release for about 60% of
releases (70% of those with time for it), late for about 30%, never for 10%; in-custody
substance-misuse treatment for 40%, a community appointment within 21 days for 40% of those
(attended by about 35%); 18% released to no fixed abode or the street.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from services.common.events import Transition
from services.simulation import community, health
from services.simulation.agencies import PRISONS, PROBATION, Agency, local
from services.simulation.recorder import Story
from services.simulation.referrals import refer

_WITH_HOUSING_PLAN = (("SETTLED", 45), ("TEMPORARY", 15), ("APPROVED_PREMISES", 12),
                      ("SUPPORTED_HOUSING", 12), ("NO_FIXED_ABODE", 8), ("ROUGH_SLEEPING", 3),
                      ("UNKNOWN", 5))
_WITHOUT_HOUSING_PLAN = (("SETTLED", 35), ("TEMPORARY", 15), ("APPROVED_PREMISES", 8),
                         ("SUPPORTED_HOUSING", 7), ("NO_FIXED_ABODE", 20), ("ROUGH_SLEEPING", 7),
                         ("UNKNOWN", 8))


def _movement(story: Story, prison: Agency, at: datetime, reason: str) -> None:
    """A release event that is not a release (court, day release, transfer): HMPPS publishes
    these as ``prisoner.released`` too, and rules must not treat them as going home."""
    story.record(prison, "transition.occurred", at, Transition(
        story.new_id("mov"), "PRISON_RELEASE", reason=reason, location=prison.agency_id))


def sentence(story: Story, at: datetime) -> tuple[datetime, datetime]:
    """From reception (or, for people already serving, the release calculation) to release and
    the first weeks on licence. Returns the spell in custody (from, until)."""
    person, rng = story.person, story.rng
    home = local(person.area, "PRISON")
    prison = home if rng.random() < 0.8 else next(p for p in PRISONS if p is not home)
    in_custody_from = story.start  # already serving when the window opens...
    if rng.random() < 0.5 or at - story.start > timedelta(days=60):  # ...or received in it
        in_custody_from = at
        story.record(prison, "transition.occurred", at, Transition(
            story.new_id("rec"), "PRISON_RECEPTION", location=prison.agency_id))
        at = story.days_later(at, 3, 14)
    lead = rng.randint(70, 240) if rng.random() < 0.9 else rng.randint(14, 55)
    release_day = at.date() + timedelta(days=lead)
    treated = rng.random() < 0.4
    release_id = story.new_id("rel")

    def scheduled(day: datetime) -> Transition:
        return Transition(release_id, "PRISON_RELEASE", scheduled_for=day.date(),
                          location=prison.agency_id, in_custody_treatment=treated)

    release_at = datetime.combine(release_day, time(8), at.tzinfo)
    scheduled_id = story.record(prison, "transition.scheduled", at, scheduled(release_at))
    housing = _duty_to_refer(story, prison, at, release_at)
    r = rng.random()
    if r < 0.03:  # new charges or lost remission: the release does not happen as planned
        cancelled = story.days_later(at, 7, lead - 1)
        prison = _movements(story, prison, at, cancelled)
        story.record(prison, "transition.cancelled", cancelled,
                     Transition(release_id, "PRISON_RELEASE", location=prison.agency_id),
                     causation_id=scheduled_id)
        return in_custody_from, release_at + timedelta(days=180)
    if r < 0.10:  # recalculated: home detention curfew brings it forward, or it moves later
        when = story.days_later(at, 7, max(7, lead - 10))
        shift = rng.choice((-28, -14, -7, 7, 14, 42))
        release_at = max(release_at + timedelta(days=shift), when + timedelta(days=3))
        release_at = datetime.combine(release_at.date(), time(8), at.tzinfo)
        scheduled_id = story.record(prison, "transition.scheduled", when, scheduled(release_at))
        at = when
    prison = _movements(story, prison, at, release_at)
    treatment_referral = None
    if treated and rng.random() < 0.75:  # prison healthcare refers on to community treatment
        made = max(story.days_later(release_at, -28, -2), story.hours_later(at, 1, 4))
        treatment_referral = refer(story, prison, "SUBSTANCE_USE", made,
                                   "continuity of care on release from custody", fate="accepted",
                                   sender_team="healthcare-substance-misuse").referral_id
    released_at = story.hours_later(release_at, 0, 3.5)
    to_hospital = rng.random() < 0.03
    accommodation = story.pick(_WITH_HOUSING_PLAN if housing else _WITHOUT_HOUSING_PLAN)
    story.record(prison, "transition.occurred", released_at, Transition(
        release_id, "PRISON_RELEASE", scheduled_for=release_at.date(),
        reason="RELEASED_TO_HOSPITAL" if to_hospital else "RELEASED",
        accommodation_on_leaving=None if to_hospital else accommodation,
        location=prison.agency_id, in_custody_treatment=treated), causation_id=scheduled_id)
    if to_hospital:
        health.after_release_to_hospital(story, released_at)
    else:
        _on_licence(story, released_at, accommodation, housing, treated, treatment_referral)
    return in_custody_from, released_at


def _movements(story: Story, prison: Agency, after: datetime, before: datetime) -> Agency:
    """Court production, day release (ROTL) and transfers between two dates: noise on the
    release stream. Returns the prison the person is in afterwards."""
    days = (before - after).days - 2
    if days < 3:
        return prison
    if story.chance(0.12):
        _movement(story, prison, story.days_later(after, 1, days), "SENT_TO_COURT")
    if story.chance(0.05):
        _movement(story, prison, story.days_later(after, 1, days), "TEMPORARY_ABSENCE_RELEASE")
    if story.chance(0.05):
        # Last, so nothing recorded by the first prison comes after the transfer.
        moved = story.days_later(after, max(1, days - 10), days)
        _movement(story, prison, moved, "TRANSFERRED")
        prison = next(p for p in PRISONS if p is not prison)
        story.record(prison, "transition.occurred", story.hours_later(moved, 2, 6), Transition(
            story.new_id("rec"), "PRISON_RECEPTION", location=prison.agency_id))
    return prison


def _duty_to_refer(story: Story, prison: Agency, scheduled_at: datetime, release_at: datetime) -> bool:
    """The prison's referral to the housing authority; True if made at least 56 days ahead."""
    rng = story.rng
    latest_on_time = release_at - timedelta(days=57)
    r = rng.random()
    if r < 0.70 and latest_on_time > scheduled_at + timedelta(days=1):
        earliest = max(scheduled_at + timedelta(days=1), release_at - timedelta(days=120))
        span = (latest_on_time - earliest).days
        made = story.office_hours((earliest + timedelta(days=rng.randint(0, span))).date())
        refer(story, prison, "HOUSING", made, "duty to refer: release from custody",
              sender_team="resettlement")
        return True
    if r < 0.9:  # late: weeks, days or the day before the gate
        day = max(release_at.date() - timedelta(days=rng.randint(1, 55)),
                  scheduled_at.date() + timedelta(days=1))
        refer(story, prison, "HOUSING", story.office_hours(day),
              "duty to refer: release from custody", sender_team="resettlement")
    return False


def _on_licence(story: Story, released_at: datetime, accommodation: str, housing_plan: bool,
                treated: bool, treatment_referral: str | None) -> None:
    """Probation supervision, help with housing for people released homeless, and the first
    community treatment appointment for people treated in custody."""
    rng = story.rng
    community.supervision(story, released_at)
    if accommodation in health.HOMELESS and (not housing_plan or rng.random() < 0.5) and rng.random() < 0.6:
        refer(story, PROBATION, "HOUSING", story.hours_later(released_at, 2, 30),
              "released with no fixed abode", sender_team="probation-delivery-unit")
    if treated:
        r = rng.random()
        if r < 0.40:  # the continuity-of-care target: seen within 21 days
            community.treatment(story, story.days_later(released_at, 1, 19), treatment_referral)
        elif r < 0.65:
            community.treatment(story, story.days_later(released_at, 22, 70), treatment_referral)
