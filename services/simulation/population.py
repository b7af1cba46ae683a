"""The synthetic population: each person's episodes over the window, merged into one stream.

Each kind of episode (custody, ward stay, A&E admission, drug treatment...) starts as a Poisson
process at a monthly rate that depends on the person's needs; an episode runs to its end before
the next of its kind can start, and nothing happens in the community while a person is in
custody. Rates per month are in ``_RATES``.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from operator import attrgetter

from services.common.events import AgencyEvent
from services.simulation import community, custody, health
from services.simulation.people import Person, make_person, nhs_numbers
from services.simulation.recorder import Story, as_utc_seconds

DAYS_PER_MONTH = 30.4375
Episode = Callable[[Story, datetime], datetime]

# (episode, monthly rate for a person with this need or 0 if it does not apply)
_RATES: list[tuple[Episode, Callable[[Person], float]]] = [
    (health.mental_health_stay, lambda p: 0.05 if p.mental_health else 0.0),
    (health.hospital_stay, lambda p: 0.08 if p.substance_use else 0.04),
    (community.seek_treatment, lambda p: 0.10 if p.substance_use else 0.0),
    (community.drop_in, lambda p: 0.25),
    (community.marac, lambda p: 0.05 if p.domestic_abuse else 0.0),
]
#: (episode already running when the window opens, share of people it applies to)
_ONGOING: list[tuple[Episode, Callable[[Person], float]]] = [
    (community.treatment, lambda p: 0.6 if p.substance_use else 0.0),
    (community.community_order, lambda p: 0.5 if p.offending else 0.0),
    (health.community_team, lambda p: 0.5 if p.mental_health else 0.0),
]
CUSTODY_RATE = 0.12       # per month, for people with an offending history
STUCK_SHARE = 0.05        # of people with both mental-health and drug needs


def simulate(seed: int, people: int, months: int, start: datetime) -> list[AgencyEvent]:
    """``people`` people over ``months`` months from ``start``, as the agencies record them,
    sorted by recorded_at (ties keep generation order). Same arguments, same events."""
    if people < 0 or months < 0:
        raise ValueError("people and months must not be negative")
    start = as_utc_seconds(start)
    end = start + timedelta(days=round(months * DAYS_PER_MONTH))
    numbers = nhs_numbers(seed)
    events: list[AgencyEvent] = []
    # Millions of small acyclic objects: the cyclic collector would rescan them again and
    # again (it doubled the run time at 50,000 people) and has nothing to find.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for index in range(people):
            # One generator per person: their history does not depend on how many others.
            rng = random.Random(f"joinedup:{seed}:{index}")
            person = make_person(index, seed, next(numbers), rng, start.date())
            story = Story(person, rng, start, end)
            live(story)
            events.extend(story.events)
    finally:
        if collecting:
            gc.enable()
    events.sort(key=attrgetter("recorded_at"))
    return events


def live(story: Story) -> None:
    """One person's window: custody first (nothing else happens inside), then the rest."""
    person = story.person
    if person.offending:
        story.custody = _custody(story)

    def free(at: datetime) -> bool:
        return not story.in_custody(at)

    for episode, share in _ONGOING:
        at = story.start + timedelta(days=story.rng.randrange(14))
        if story.chance(share(person)) and free(at):
            episode(story, story.office_hours(at.date()))
    for episode, rate in _RATES:
        monthly = rate(person)
        if monthly > 0:
            _repeat(story, episode, monthly, free)
    if person.mental_health and person.substance_use and story.chance(STUCK_SHARE):
        at = _day_in_window(story)
        if free(at):
            community.stuck_between_services(story, at)
    if person.care_leaver:
        birthday = _eighteenth(person.born)
        if story.start.date() < birthday < story.end.date():
            community.leaving_care(story, birthday)


def _repeat(story: Story, episode: Episode, monthly: float, free: Callable[[datetime], bool]) -> None:
    at = story.start + _gap(story, monthly)
    while at < story.end:
        at = story.office_hours(at.date())
        finished = episode(story, at) if free(at) else at
        at = max(at, finished) + _gap(story, monthly)


def _custody(story: Story) -> list[tuple[datetime, datetime]]:
    """Custodial sentences; returns the spells in custody (so community life can avoid them)."""
    spells = []
    at = story.start + _gap(story, CUSTODY_RATE)
    while at < story.end:
        spell = custody.sentence(story, story.office_hours(at.date()))
        spells.append(spell)
        at = spell[1] + timedelta(days=30) + _gap(story, CUSTODY_RATE)
    return spells


def _gap(story: Story, monthly: float) -> timedelta:
    return timedelta(days=story.rng.expovariate(monthly) * DAYS_PER_MONTH)


def _day_in_window(story: Story) -> datetime:
    days = max(1, (story.end - story.start).days)
    return story.office_hours(story.start.date() + timedelta(days=story.rng.randrange(days)))


def _eighteenth(born: date) -> date:
    try:
        return born.replace(year=born.year + 18)
    except ValueError:  # born on 29 February
        return date(born.year + 18, 3, 1)
