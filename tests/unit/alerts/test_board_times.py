"""The duty board's times: shown in Europe/London with the zone in force (GMT in winter,
BST in summer, across the clock changes), read back from a datetime-local control as London
wall-clock time, and how long something has been open."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.alerts.entrypoints.pages import (
    LONDON,
    day,
    duration,
    from_london_input,
    london,
    london_input,
)


@pytest.mark.parametrize(("at", "shown"), [
    (datetime(2026, 12, 6, 14, 5, tzinfo=UTC), "Sun 6 Dec 2026 14:05 GMT"),
    (datetime(2026, 7, 6, 14, 5, tzinfo=UTC), "Mon 6 Jul 2026 15:05 BST"),
    # the clocks go forward at 01:00 UTC on the last Sunday of March...
    (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "Sun 29 Mar 2026 00:59 GMT"),
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Sun 29 Mar 2026 02:00 BST"),
    # ...and back at 01:00 UTC on the last Sunday of October (01:30 happens twice)
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Sun 25 Oct 2026 01:30 BST"),
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Sun 25 Oct 2026 01:30 GMT"),
    # late on 31 December in UTC is already the new year nowhere in London in winter
    (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "Thu 31 Dec 2026 23:59 GMT"),
])
def test_a_moment_is_shown_in_london_with_its_zone(at: datetime, shown: str) -> None:
    assert london(at) == shown


def test_summer_time_moves_the_day_too() -> None:
    assert london(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "Wed 1 Jul 2026 00:30 BST"


def test_nothing_is_shown_for_no_time() -> None:
    assert london(None) == ""


def test_a_datetime_local_value_is_london_wall_clock_time() -> None:
    winter = from_london_input("2026-12-07T09:00")
    summer = from_london_input("2026-07-07T09:00")
    assert winter == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert summer == datetime(2026, 7, 7, 8, 0, tzinfo=UTC)
    assert from_london_input("2026-07-07T09:00:30").second == 30
    assert london_input(summer) == "2026-07-07T09:00"
    assert london_input(datetime(2026, 12, 7, 9, 0, tzinfo=UTC)) == "2026-12-07T09:00"
    assert winter.tzinfo is LONDON


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01T09:00", "09:00"])
def test_a_value_that_is_no_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        from_london_input(text)


@pytest.mark.parametrize(("delta", "words"), [
    (timedelta(seconds=-5), "under a minute"),
    (timedelta(seconds=59), "under a minute"),
    (timedelta(minutes=12), "12 min"),
    (timedelta(hours=2), "2 h"),
    (timedelta(hours=2, minutes=5, seconds=59), "2 h 5 min"),
    (timedelta(days=1), "1 day"),
    (timedelta(days=3, hours=4, minutes=30), "3 days 4 h"),
])
def test_how_long(delta: timedelta, words: str) -> None:
    assert duration(delta) == words


def test_a_day() -> None:
    assert day(date(2026, 12, 6)) == "6 Dec 2026"
