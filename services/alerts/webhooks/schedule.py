"""When to try a delivery again, and what an answer means: pure.

A delivery is tried at once, then again after each delay of ``SCHEDULE`` (each moved by up
to ±20% at random, so endpoints that failed together do not all come back in the same
second): 13 attempts over about three days (2.8 days before jitter, 2.3-3.4 with it). After
the last one fails the delivery is dead (the dead letter, which an operator can redrive).

What an answer means:

* 2xx: delivered.
* 410 Gone: the receiver says the endpoint is gone for good: it is disabled and its pending
  deliveries are cancelled (Standard Webhooks).
* 429 Too Many Requests, 503 Service Unavailable: tried again no sooner than their
  ``Retry-After`` (seconds or an HTTP date), capped at ``RETRY_AFTER_CAP``, and no sooner
  than the schedule says; they count as attempts, so even a receiver that always asks for
  more time ends in the dead letter in bounded time.
* anything else (3xx, 4xx, 5xx, timeouts, refused or broken connections): tried again on
  the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

SCHEDULE: Final = tuple(timedelta(seconds=s) for s in (
    5, 30, 2 * 60, 10 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 16 * 3600,
    24 * 3600))
#: the first attempt and one after each delay
MAX_ATTEMPTS: Final = len(SCHEDULE) + 1
JITTER: Final = 0.2
RETRY_AFTER_CAP: Final = timedelta(hours=24)
#: the answers that may carry Retry-After for us
SLOW_DOWN: Final = frozenset({429, 503})
GONE: Final = 410


def delay_after(attempts: int, jitter: float) -> timedelta | None:
    """How long after its ``attempts``-th failed attempt a delivery is tried again (None: that
    was the last). ``jitter`` in [0, 1) moves the delay by -20% (0) to +20% (towards 1)."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter is in [0, 1]")
    if attempts < 1 or attempts >= MAX_ATTEMPTS:
        return None
    return SCHEDULE[attempts - 1] * (1 - JITTER + 2 * JITTER * jitter)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header as a wait from ``now`` (None when absent or unreadable);
    a date in the past is no wait, and any wait is capped at ``RETRY_AFTER_CAP``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        wait = timedelta(seconds=int(text[:9]))   # nine digits are already years: capped below
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:        # an HTTP date is GMT; "-0000" parses without a zone
            when = when.replace(tzinfo=now.tzinfo)
        wait = max(timedelta(0), when - now)
    return min(wait, RETRY_AFTER_CAP)


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    at: datetime


@dataclass(frozen=True, slots=True)
class Dead:
    reason: str


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str = "410 Gone"


Outcome = Delivered | Retry | Dead | Gone


def decide(attempts: int, status: int | None, failure: str | None, retry_after_header: str | None,
           now: datetime, jitter: float) -> Outcome:
    """What follows the ``attempts``-th attempt, answered ``status`` (None: no answer, and
    ``failure`` says why: timeout, connect, ...), at ``now``."""
    if status is not None and 200 <= status < 300:
        return Delivered()
    if status == GONE:
        return Gone()
    last = str(status) if status is not None else (failure or "no answer")
    delay = delay_after(attempts, jitter)
    if delay is None:
        return Dead(f"{attempts} attempts, the last: {last}")
    if status in SLOW_DOWN:
        asked = retry_after(retry_after_header, now)
        if asked is not None:
            delay = max(delay, asked)
    return Retry(now + delay)
