"""Onboarding backfill: an agency joining uploads its history beside everyone's live events.

The decisions, pure (the reasons are in docs/backfill.md). An operator opens a backfill for
an agency with a *cut-over*; the record (agency, cut-over) never changes after, so every
decision below is a function of the events and that record, and a replay or rebuild makes
the same ones as live processing did:

- an event is **history** when its agency has a backfill and it was recorded before the
  cut-over (``history_of``). The expectations it opens are *held*: neither a later event
  nor the deadline timer judges them until the backfill is finished, since the rest of the
  history, or another agency's matching event, may still be on its way. A held expectation
  is fulfilled by a matching event as any other.
- an alert is **historical** when its trigger is an agency's history and it was raised
  before that agency's cut-over (``historical``): its deadline had passed before the agency
  joined. It is recorded (the person's history, reports) and never delivered to a duty team.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.alerts.events import AlertEvent, alert_id_for

#: agency -> its cut-over: its events recorded before it are history
CutOvers = Mapping[str, datetime]


class BackfillRefused(Exception):
    """An operator's request that cannot be carried out; the message says why (no personal
    data: agency ids and times only)."""


@dataclass(frozen=True, slots=True)
class HistoricalAlert:
    alert_id: str
    agency: str
    cut_over: datetime
    raised_at: datetime


#: what a historical raise says in the alert's history (and on the alerts topic)
HISTORICAL_NOTE = ("historical: its deadline passed before the agency joined (onboarding "
                   "backfill); recorded, not sent to a duty team")


def noted(event: AlertEvent) -> AlertEvent:
    """A historical raise, saying so in its history."""
    return dataclasses.replace(event, detail=event.detail or HISTORICAL_NOTE)


def history_of(agency: str, recorded_at: datetime, cut_overs: CutOvers) -> str | None:
    """The agency whose history this event is, or None for a live event."""
    cut_over = cut_overs.get(agency)
    return agency if cut_over is not None and recorded_at < cut_over else None


def historical(event: AlertEvent, cut_overs: CutOvers) -> HistoricalAlert | None:
    """A raise that is historical, with the backfill that makes it so; None otherwise.

    The alert id is uuid5(rule, trigger agency/event id), so the trigger's agency is the one
    whose id matches (no schema field needed). Every raise is stamped no earlier than its
    trigger was recorded, so a raise before the cut-over also means a trigger that is history.
    """
    if event.action != "raised":
        return None
    for agency, cut_over in cut_overs.items():
        if (event.at < cut_over
                and alert_id_for(event.rule_id, agency, event.trigger_event_id) == event.alert_id):
            return HistoricalAlert(event.alert_id, agency, cut_over, event.at)
    return None


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    """One agency's backfill as an operator sees it (counts, no personal data)."""

    agency: str
    cut_over: datetime
    opened_at: datetime
    opened_by: str
    finished_at: datetime | None
    finished_by: str | None
    history_applied: int    # its events recorded before the cut-over, applied so far
    held: int               # deadlines opened by its history, still waiting to be judged
    historical_alerts: int  # alerts raised from its history before the cut-over

    @property
    def state(self) -> str:
        if self.finished_at is None:
            return "open: history is being applied, its deadlines are held"
        if self.held:
            return "finished: held deadlines being released"
        return "finished"
