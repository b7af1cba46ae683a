"""Working days in England and Wales, for referral answer-time SLAs.

Convention (the one statutory "N working days" deadlines use, e.g. FOI's 20 working days):
the day the clock starts does not count, weekends and England-and-Wales bank holidays are
skipped, and the deadline is the END of the Nth working day, in UK local time. We return the
instant that day ends (local midnight, converted to UTC), so an answer on the last working day
at 23:30 is on time and one at 00:30 the next morning is not. Whole days suit duty teams
better than "same time of day N working days later", which makes 17:01 answers late.

England and Wales share one bank-holiday calendar (Scotland and Northern Ireland differ); the
``holidays`` package's GB/ENG calendar is used, including substitute days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays

UK: ZoneInfo = ZoneInfo("Europe/London")


@cache
def _bank_holidays() -> holidays.HolidayBase:
    # Built on first use, not at import; the object extends itself to new years as asked.
    return holidays.country_holidays("GB", subdiv="ENG")


# The two below are pure functions of a date, asked about the same few hundred dates again and
# again (every referral counts its working days); the holidays lookup and the time-zone
# conversion cost more than the rest of opening a deadline, so their answers are kept.
@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays()


@lru_cache(maxsize=4096)
def end_of_day(day: date) -> datetime:
    """The UTC instant UK local ``day`` ends (local midnight that starts the next day)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UK).astimezone(UTC)


def local_date(instant: datetime) -> date:
    return instant.astimezone(UK).date()


def add_working_days(start: datetime, n: int) -> datetime:
    """The end of the ``n``-th working day after ``start``'s UK date (``n <= 0``: that day)."""
    day = local_date(start)
    remaining = n
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return end_of_day(day)
