"""One person's story as the agencies record it: events, ids, recording delays, office hours.

Everything random comes from the person's own ``random.Random``, so a person's history depends
only on (seed, index), never on how many people are simulated or on the wall clock.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from services.common.events import SCHEMA_VERSION, AgencyEvent, Identifier, Payload, Source
from services.simulation.agencies import SENSITIVITY_BY_KIND, Agency
from services.simulation.people import Person

# Sensitivity when two kinds meet (a prison's referral to a drug service reveals drug use):
# the more restricted category wins.
_PRECEDENCE = ("DOMESTIC_ABUSE", "SUBSTANCE_USE", "MENTAL_HEALTH", "CRIMINAL_JUSTICE", "HEALTH",
               "GENERAL")
_RANK = {s: i for i, s in enumerate(_PRECEDENCE)}
_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def as_utc_seconds(moment: datetime) -> datetime:
    """UTC, whole seconds (naive means UTC). Avro keeps milliseconds; whole seconds make every
    event survive an encode/decode round trip unchanged."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def stricter(*sensitivities: str) -> str:
    return min(sensitivities, key=_RANK.__getitem__)


def about(service_kind: str) -> str:
    """The sensitivity of a fact about a service of this kind."""
    return SENSITIVITY_BY_KIND.get(service_kind, "GENERAL")


class Story:
    def __init__(self, person: Person, rng: random.Random, start: datetime, end: datetime) -> None:
        self.person = person
        self.rng = rng
        self.start = start
        self.end = end
        self.events: list[AgencyEvent] = []
        self.custody: list[tuple[datetime, datetime]] = []  # spells in prison, once known
        self._random = rng.random  # bound once: the hot paths below call it ~10 times an event
        self._publishers: dict[tuple[str, str | None], tuple[Source, tuple[Identifier, ...]]] = {}
        self._nine = time(9, tzinfo=start.tzinfo)

    # --- chance and ids -------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self._random() < p

    def _below(self, n: int) -> int:
        # Not rng.randrange: that is several times slower, and nothing here needs its exactness.
        return int(self._random() * n)

    def in_custody(self, at: datetime) -> bool:
        return any(begin <= at <= until for begin, until in self.custody)

    def pick(self, table: tuple[tuple[str, int], ...]) -> str:
        """One value from (value, weight) pairs."""
        point = self.rng.uniform(0, sum(w for _, w in table))
        for value, weight in table:
            point -= weight
            if point <= 0:
                return value
        return table[-1][0]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.getrandbits(64):016x}"

    # --- time -----------------------------------------------------------------------------

    def office_hours(self, day: date) -> datetime:
        """A time between 09:00 and 17:00 on that day (when case workers record decisions)."""
        return datetime.combine(day, self._nine) + timedelta(minutes=self._below(8 * 60))

    def working_days_later(self, at: datetime, days: int) -> datetime:
        """Office hours ``days`` working days after ``at`` (0: later the same day, or the next
        working day). Bank holidays are left out: the simulated delays are approximate."""
        day = at.date()
        while days > 0 or day.weekday() >= 5:
            day += timedelta(days=1)
            if day.weekday() < 5:
                days -= 1
        later = self.office_hours(day)
        if later <= at:
            later = at + timedelta(minutes=5 + self._below(115))
        return later

    def hours_later(self, at: datetime, low: float, high: float) -> datetime:
        low_s = int(low * 3600)
        return at + timedelta(seconds=low_s + self._below(int(high * 3600) - low_s))

    def days_later(self, at: datetime, low: int, high: int) -> datetime:
        """Office hours, between ``low`` and ``high`` days after ``at`` (the hottest path)."""
        r = self._random
        return datetime.combine(at.date(), self._nine) + timedelta(
            days=low + int(r() * (high - low + 1)), minutes=int(r() * 480))

    def _recording_delay(self) -> timedelta:
        # Most facts are keyed in within the hour; some wait for the end of a shift, a few for
        # a backlog. This is what makes events from different agencies arrive out of order.
        r = self._random()
        if r < 0.70:
            return timedelta(seconds=60 + self._below(3540))
        if r < 0.92:
            return timedelta(seconds=3600 + self._below(7 * 3600))
        if r < 0.99:
            return timedelta(seconds=8 * 3600 + self._below(40 * 3600))
        return timedelta(seconds=48 * 3600 + self._below(72 * 3600))

    # --- events ---------------------------------------------------------------------------

    def _publisher(self, agency: Agency, team: str | None) -> tuple[Source, tuple[Identifier, ...]]:
        """The source and identifiers this agency's events about the person carry (cached:
        they are the same on every event)."""
        key = (agency.agency_id, team)
        publisher = self._publishers.get(key)
        if publisher is None:
            publisher = self._publishers[key] = (
                agency.source(self.person.area, team), self.person.identifiers(agency))
        return publisher

    def record(self, agency: Agency, event_type: str, at: datetime, payload: Payload, *,
               about_kind: str | None = None, causation_id: str | None = None,
               extra: dict[str, str] | None = None, team: str | None = None) -> str:
        """Record one fact; returns its event id (for causation) even when it falls outside
        the window and is left out."""
        # A version-4 UUID from the person's generator (uuid.UUID() is slow for 500k events).
        h = f"{self.rng.getrandbits(128) & _UUID_MASK | _UUID_V4:032x}"
        event_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        if self.start <= at < self.end:
            source, identifiers = self._publisher(agency, team)
            sensitivity = SENSITIVITY_BY_KIND.get(source.service_kind, "GENERAL")
            if about_kind is not None:
                sensitivity = stricter(sensitivity, about(about_kind))
            # Positional, in field order: keyword arguments cost a third more at 500k events.
            self.events.append(AgencyEvent(
                event_id, event_type, at, at + self._recording_delay(), source, identifiers,
                payload, sensitivity, SCHEMA_VERSION, causation_id, extra or {}))
        return event_id
