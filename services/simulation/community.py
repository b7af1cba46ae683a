"""Support in the community: probation supervision, drug treatment, voluntary-sector drop-ins,
MARAC, leaving care at 18, and two services each waiting for the other ("stuck between
services")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from services.common.events import Contact, Discharge, Transition
from services.simulation.agencies import PROBATION, Agency, local
from services.simulation.recorder import Story
from services.simulation.referrals import refer


def appointments(story: Story, agency: Agency, first: datetime, count: int, gap_days: tuple[int, int],
                 attend: float, *, referral_id: str | None = None, mode: str = "FACE_TO_FACE",
                 disengage_after: int | None = 3) -> tuple[datetime, bool]:
    """A run of appointments; returns (last one, whether the person disengaged).

    ``disengage_after`` consecutive misses end the run with a disengagement discharge, which
    the risk-window rule watches for.
    """
    at, missed_in_a_row = first, 0
    for _ in range(count):
        if at >= story.end or story.in_custody(at):  # after the window, or sent to prison
            break
        attended = story.chance(attend)
        story.record(agency, f"contact.{'attended' if attended else 'missed'}", at,
                     Contact(story.new_id("con"), mode, referral_id))
        missed_in_a_row = 0 if attended else missed_in_a_row + 1
        if disengage_after is not None and missed_in_a_row >= disengage_after:
            story.record(agency, "discharge.disengaged", story.days_later(at, 7, 21),
                         Discharge(story.new_id("epi")))
            return at, True
        at = story.days_later(at, *gap_days)
    return at, False


def supervision(story: Story, released_at: datetime) -> None:
    """Licence supervision: seen on the day of release, weekly for a month, then fortnightly."""
    first = released_at + timedelta(hours=story.rng.randint(2, 6))
    last, _ = appointments(story, PROBATION, first, 4, (6, 8), 0.85, disengage_after=None)
    appointments(story, PROBATION, story.days_later(last, 12, 16), story.rng.randint(3, 10),
                 (12, 16), 0.8, disengage_after=None)
    if story.chance(0.08):  # a new probation practitioner: who is the lead professional now
        story.record(PROBATION, "transition.occurred", story.days_later(first, 20, 90),
                     Transition(story.new_id("lead"), "LEAD_PROFESSIONAL_CHANGE"))


def community_order(story: Story, at: datetime) -> datetime:
    """Supervision on a community sentence (already running when the window opens)."""
    last, _ = appointments(story, PROBATION, at, story.rng.randint(4, 16), (10, 18), 0.8,
                           disengage_after=None)
    return last


def treatment(story: Story, first: datetime, referral_id: str | None = None) -> datetime:
    """Keywork at the drug and alcohol service, ending in a discharge of some kind."""
    service = local(story.person.area, "SUBSTANCE_USE")
    last, disengaged = appointments(story, service, first, story.rng.randint(4, 16), (7, 16),
                                    0.72, referral_id=referral_id)
    if disengaged:
        return last
    ending = story.days_later(last, 1, 14)
    r = story.rng.random()
    if r < 0.45:
        story.record(service, "discharge.completed", ending, Discharge(story.new_id("epi")))
    elif r < 0.80:
        story.record(service, "discharge.planned", ending, Discharge(story.new_id("epi")))
    elif r < 0.88:
        story.record(service, "discharge.transferred", ending, Discharge(
            story.new_id("epi"), destination_service_kind="MENTAL_HEALTH"))
    elif r < 0.95:
        story.record(service, "discharge.moved_away", ending, Discharge(story.new_id("epi")))
    elif r < 0.99:
        story.record(service, "discharge.excluded", ending, Discharge(story.new_id("epi")))
    else:  # drug-related deaths are the reason continuity of care matters
        story.record(service, "discharge.died", ending, Discharge(story.new_id("epi")))
    return ending


def seek_treatment(story: Story, at: datetime) -> datetime:
    """A referral to the drug service (from the charity or probation) and, if accepted, keywork."""
    sender = local(story.person.area, "VOLUNTARY") if story.chance(0.6) else PROBATION
    answer = refer(story, sender, "SUBSTANCE_USE", at, "drug or alcohol use")
    if answer.status != "accepted" or answer.decided_at is None:
        return at + timedelta(days=30)
    return treatment(story, story.days_later(answer.decided_at, 2, 15), answer.referral_id)


def drop_in(story: Story, at: datetime) -> datetime:
    """Voluntary-sector drop-ins; the charity is often the one who refers on to housing."""
    charity = local(story.person.area, "VOLUNTARY")
    last, _ = appointments(story, charity, at, story.rng.randint(2, 8), (5, 25), 0.75,
                           mode="DROP_IN", disengage_after=None)
    if story.chance(0.2):
        refer(story, charity, "HOUSING", story.days_later(at, 0, 10), "at risk of homelessness")
    return last


def marac(story: Story, at: datetime) -> datetime:
    """A high-risk domestic abuse case: referred by the charity's advocate, heard at MARAC."""
    charity = local(story.person.area, "VOLUNTARY")
    answer = refer(story, charity, "MARAC", at, "high risk of serious harm (DASH)",
                   fate="accepted", sender_team="idva")
    assert answer.decided_at is not None
    board = answer.receiver
    heard = story.days_later(answer.decided_at, 1, 14)
    story.record(board, "contact.attended", heard, Contact(story.new_id("con"), "MEETING",
                 answer.referral_id), extra={"risk_level": "HIGH"})
    if story.chance(0.4):  # a refuge or sanctuary scheme: the housing team is asked
        refer(story, board, "HOUSING", story.days_later(heard, 0, 3), "domestic abuse: safe housing")
    return heard + timedelta(days=60)


def leaving_care(story: Story, birthday: date) -> None:
    """Turning 18 in care: the transition, and (for most) the pathway referral to adult
    services; a personal adviser stays in touch up to 25."""
    team = local(story.person.area, "LEAVING_CARE")
    eighteen = datetime.combine(birthday, time(0), story.start.tzinfo)
    # Planned months ahead; a birthday early in the window was planned just inside it.
    planned = max(story.hours_later(story.start, 1, 48), story.days_later(eighteen, -120, -30))
    transition_id = story.new_id("care")
    scheduled = story.record(team, "transition.scheduled", planned, Transition(
        transition_id, "LEAVING_CARE", scheduled_for=birthday))
    story.record(team, "transition.occurred", story.office_hours(birthday), Transition(
        transition_id, "LEAVING_CARE", scheduled_for=birthday), causation_id=scheduled)
    if story.chance(0.7):  # the pathway referral to adult services; missing for 30%
        made = max(story.days_later(eighteen, -60, 10), story.hours_later(planned, 1, 48))
        refer(story, team, "SOCIAL_CARE", made, "pathway plan: leaving care at 18")
    if story.chance(0.35):  # a care leaver's own tenancy: the housing team is asked too
        made = max(story.days_later(eighteen, -45, 20), story.hours_later(planned, 1, 48))
        refer(story, team, "HOUSING", made, "care leaver: move-on accommodation")
    appointments(story, team, story.days_later(eighteen, 3, 20), story.rng.randint(2, 6),
                 (21, 40), 0.75, disengage_after=None)


def stuck_between_services(story: Story, at: datetime) -> datetime:
    """Mental health says "stabilise drug use first", the drug service says "mental health
    first", and the person waits; for some, round two goes the same way."""
    sender = local(story.person.area, "VOLUNTARY")
    now = at
    for _ in range(2 if story.chance(0.4) else 1):
        first = refer(story, sender, "MENTAL_HEALTH", now, "low mood, self-harm",
                      fate="declined", cites="SUBSTANCE_USE")
        now = story.days_later(first.decided_at or now, 1, 10)
        second = refer(story, sender, "SUBSTANCE_USE", now, "drug use, low mood",
                       fate="declined", cites="MENTAL_HEALTH")
        now = story.days_later(second.decided_at or now, 5, 20)
    if story.chance(0.3):  # a dual-diagnosis worker eventually takes the case
        answer = refer(story, sender, "SUBSTANCE_USE", now, "dual diagnosis", fate="accepted")
        if answer.decided_at is not None:
            now = treatment(story, story.days_later(answer.decided_at, 2, 10), answer.referral_id)
    return now
