"""The retry schedule and what each answer means: pure, so the three days are checked in
microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.webhooks import schedule
from services.alerts.webhooks.schedule import Dead, Delivered, Gone, Retry, decide

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
jitters = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=schedule.MAX_ATTEMPTS - 1,
                   max_size=schedule.MAX_ATTEMPTS - 1)


def total(jitter: list[float]) -> timedelta:
    delays = [schedule.delay_after(n, j) for n, j in enumerate(jitter, 1)]
    assert all(d is not None for d in delays)
    return sum((d for d in delays if d is not None), timedelta(0))


def test_the_schedule_without_jitter_is_about_three_days() -> None:
    plain = total([0.5] * (schedule.MAX_ATTEMPTS - 1))
    assert plain == sum(schedule.SCHEDULE, timedelta(0))
    assert timedelta(days=2.5) < plain < timedelta(days=3.2)
    assert schedule.delay_after(1, 0.5) == timedelta(seconds=5)
    assert schedule.delay_after(schedule.MAX_ATTEMPTS - 1, 0.5) == timedelta(hours=24)


@given(jitters)
def test_the_total_stays_within_the_jitter_bounds(jitter: list[float]) -> None:
    plain = sum(schedule.SCHEDULE, timedelta(0))
    assert plain * 0.8 <= total(jitter) <= plain * 1.2
    assert timedelta(days=2.2) < total(jitter) < timedelta(days=3.4)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_each_wait_is_longer_than_the_one_before(jitter: float) -> None:
    delays = [schedule.delay_after(n, jitter) for n in range(1, schedule.MAX_ATTEMPTS)]
    assert all(a is not None and b is not None and a < b
               for a, b in zip(delays, delays[1:], strict=False))


@given(jitters)
def test_attempts_move_forward_in_time_whatever_the_jitter(jitter: list[float]) -> None:
    delays = [schedule.delay_after(n, j) for n, j in enumerate(jitter, 1)]
    assert all(d is not None and d >= timedelta(seconds=4) for d in delays)


@given(st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=1, max_value=12))
def test_jitter_moves_a_wait_by_at_most_a_fifth(jitter: float, attempts: int) -> None:
    base = schedule.SCHEDULE[attempts - 1]
    delay = schedule.delay_after(attempts, jitter)
    assert delay is not None and base * 0.8 <= delay <= base * 1.2


def test_after_the_last_attempt_there_is_no_wait() -> None:
    assert schedule.MAX_ATTEMPTS == 13
    assert schedule.delay_after(schedule.MAX_ATTEMPTS, 0.5) is None
    assert schedule.delay_after(0, 0.5) is None
    with pytest.raises(ValueError):
        schedule.delay_after(1, 1.5)


@pytest.mark.parametrize(("header", "wait"), [
    ("120", timedelta(seconds=120)),
    (" 0 ", timedelta(0)),
    (format_datetime(NOW + timedelta(minutes=3), usegmt=True), timedelta(minutes=3)),
    ("Sun, 06 Dec 2026 09:10:00 GMT", timedelta(minutes=10)),
    (format_datetime(NOW - timedelta(minutes=3), usegmt=True), timedelta(0)),
    ("999999999999", schedule.RETRY_AFTER_CAP),
    (format_datetime(NOW + timedelta(days=9), usegmt=True), schedule.RETRY_AFTER_CAP),
    (None, None), ("", None), ("soon", None), ("-5", None), ("1.5", None), ("²", None),
])
def test_retry_after_in_seconds_or_as_a_date(header: str | None, wait: timedelta | None) -> None:
    assert schedule.retry_after(header, NOW) == wait


@given(st.integers(min_value=0, max_value=10**12))
def test_retry_after_in_seconds_is_honoured_up_to_the_cap(seconds: int) -> None:
    assert schedule.retry_after(str(seconds), NOW) == min(
        timedelta(seconds=seconds), schedule.RETRY_AFTER_CAP)


@given(st.text(max_size=40))
def test_any_retry_after_text_is_read_or_ignored_never_an_error(text: str) -> None:
    wait = schedule.retry_after(text, NOW)
    assert wait is None or timedelta(0) <= wait <= schedule.RETRY_AFTER_CAP


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_delivered(status: int) -> None:
    assert decide(1, status, None, None, NOW, 0.5) == Delivered()


def test_410_is_gone_even_on_the_last_attempt() -> None:
    assert decide(1, 410, None, None, NOW, 0.5) == Gone()
    assert decide(schedule.MAX_ATTEMPTS, 410, None, None, NOW, 0.5) == Gone()


@pytest.mark.parametrize(("status", "failure"), [
    (500, None), (404, None), (301, None), (400, None), (None, "timeout"), (None, "connect")])
def test_other_failures_follow_the_schedule(status: int | None, failure: str | None) -> None:
    assert decide(1, status, failure, "3600", NOW, 0.5) == Retry(NOW + timedelta(seconds=5))
    assert decide(3, status, failure, None, NOW, 0.5) == Retry(NOW + timedelta(minutes=2))


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_wait_as_long_as_they_ask(status: int) -> None:
    assert decide(1, status, None, "120", NOW, 0.5) == Retry(NOW + timedelta(seconds=120))
    # never sooner than the schedule, never later than the cap
    assert decide(6, status, None, "1", NOW, 0.5) == Retry(NOW + timedelta(hours=1))
    assert decide(1, status, None, "9999999", NOW, 0.5) == Retry(NOW + schedule.RETRY_AFTER_CAP)
    assert decide(1, status, None, None, NOW, 0.5) == Retry(NOW + timedelta(seconds=5))


def test_the_last_failure_is_dead_with_its_reason() -> None:
    last = schedule.MAX_ATTEMPTS
    assert decide(last, 500, None, None, NOW, 0.5) == Dead("13 attempts, the last: 500")
    assert decide(last, None, "connect", None, NOW, 0.5) == Dead("13 attempts, the last: connect")
    assert decide(last, 429, None, "10", NOW, 0.5) == Dead("13 attempts, the last: 429")
