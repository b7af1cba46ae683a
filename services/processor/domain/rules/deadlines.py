"""Deadlines: when an expectation is due, and the timer's step that fires the overdue ones.

Due times come from EVENT time (the trigger's occurred-at, or a date it carries), never from
when the event was processed, so live processing and a replay agree on every deadline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime

from services.alerts.events import AlertEvent
from services.processor.domain.rules.calendar import add_working_days, end_of_day
from services.processor.domain.rules.correlation import Seen
from services.processor.domain.rules.model import RulePack, Window
from services.processor.domain.rules.state import ALERTED, OPEN, Expectation
from services.processor.domain.rules.wording import raised


def fire_due(pack: RulePack, expectations: Iterable[Expectation],
             now: datetime) -> list[tuple[Expectation, AlertEvent]]:
    """The timer's step: every open expectation whose deadline has passed (``due_at < now``)
    becomes alerted, raised at its deadline (``Expectation.alert_at``), whoever notices first.

    Strictly before ``now``: an event at exactly the deadline is on time (fulfilment is
    ``occurred_at <= due_at``), so it must not be pre-empted by an alert at that instant.
    An expectation a backfill holds (``history_of``) waits for its release (``released``).
    """
    fired = []
    for expectation in expectations:
        if (expectation.status == OPEN and expectation.due_at < now
                and expectation.history_of is None):
            at = expectation.alert_at
            done = dataclasses.replace(expectation, status=ALERTED, raised_at=at)
            fired.append((done, raised(done, at)))
    return fired


def released(expectation: Expectation) -> Expectation:
    """A held expectation once its backfill is finished: judged like any other from now on."""
    return dataclasses.replace(expectation, history_of=None)


def due_at(window: Window, seen: Seen) -> datetime | None:
    """The deadline for a trigger, or None when the trigger lacks the date to count from."""
    if window.within is not None:
        return seen.occurred_at + window.within
    if window.working_days is not None:
        asked = seen.facts.get(window.working_days_field) if window.working_days_field else None
        valid = isinstance(asked, int) and not isinstance(asked, bool) and asked > 0
        return add_working_days(seen.occurred_at, asked if valid else window.working_days)  # type: ignore[arg-type]
    scheduled = seen.facts.get(window.of or "")
    if not scheduled or window.before is None:
        return None
    return end_of_day(date.fromisoformat(str(scheduled)) - window.before)
