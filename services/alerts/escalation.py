"""Escalation on the wall clock: pure, over the alert before and after a change.

An alert being worked has at most one timer (a durable row, ``alert_timer``, written with
the change that set it, so a restart loses none):

* **escalate**: open and not acknowledged by ``unacknowledged[severity]`` after it reached
  its team: it goes to the next tier (the team's ``escalates_to``), and from the last tier to
  the fallback team. An alert not yet routed gets one at once (the fallback team takes it).
* **acknowledgement**: acknowledged and not resolved within ``acknowledgement_timeout``: back
  to open for the team to see again (and to escalate from there).
* **wake**: snoozed until a time: back to open then.

Timers count from the wall clock of the change, never the alert's stream time: an alert
raised for a deadline long past reached its team now. Only live processing sets them; a
rebuild, replay or dry run never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from services.alerts.domain import Alert

KINDS: Final = ("escalate", "acknowledgement", "wake")


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    #: severity -> how long an open alert may go unacknowledged (absent: it never escalates)
    unacknowledged: Mapping[str, timedelta] = field(default_factory=lambda: {
        "critical": timedelta(minutes=15), "high": timedelta(minutes=30)})
    acknowledgement_timeout: timedelta = timedelta(hours=4)


@dataclass(frozen=True, slots=True)
class Timer:
    alert_id: str
    kind: str
    due_at: datetime
    version: int          # the alert's when the timer was set


class _Keep:
    """The alert's timer stays as it is."""


KEEP: Final = _Keep()
TimerChange = Timer | None | _Keep   # a new timer, none (clear it), or keep


def timer_after(before: Alert | None, after: Alert, now: datetime,
                policy: EscalationPolicy) -> TimerChange:
    """The alert's timer after a change from ``before`` to ``after`` at wall-clock ``now``."""
    if not after.working:
        return None
    if after.team_id is None:
        return Timer(after.alert_id, "escalate", now, after.version)
    if after.status == "snoozed":
        if (before is not None and before.status == "snoozed"
                and before.snoozed_until == after.snoozed_until):
            return KEEP
        return Timer(after.alert_id, "wake", after.snoozed_until or now, after.version)
    if after.status == "acknowledged":
        if before is not None and before.status == "acknowledged":
            return KEEP
        return Timer(after.alert_id, "acknowledgement", now + policy.acknowledgement_timeout,
                     after.version)
    # open: a new arrival at a team (raised, escalated, reopened, woken, unacknowledged)
    if (before is not None and before.status == "open" and before.team_id == after.team_id
            and before.tier == after.tier):
        return KEEP
    wait = policy.unacknowledged.get(after.severity)
    return None if wait is None else Timer(after.alert_id, "escalate", now + wait,
                                           after.version)


@dataclass(frozen=True, slots=True)
class Escalation:
    """Where an alert whose escalate timer fired goes, and why."""

    team_id: str
    tier: int
    reason: str


def escalation_for(alert: Alert, escalates_to: str | None, fallback: str | None
                   ) -> Escalation | None:
    """The next tier: the team's ``escalates_to``, or from the last tier the fallback team.
    None when there is nowhere further (it is with the fallback team already, or there is
    no fallback team): the caller reports that loudly and tries again later."""
    if alert.team_id is None:
        return None if fallback is None else Escalation(fallback, alert.tier, "unrouted")
    if escalates_to is not None and escalates_to != alert.team_id:
        return Escalation(escalates_to, alert.tier + 1, "not acknowledged in time")
    if fallback is not None and fallback != alert.team_id:
        return Escalation(fallback, alert.tier + 1, "not acknowledged in time")
    return None
