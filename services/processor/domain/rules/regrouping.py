"""Alerts after a regroup: records were linked or separated, a person's events were folded
again, and each alert is brought in line with the expectation it stands for. Pure.

The alert id is the expectation id (rule and trigger event, nothing personal), so the
expectation folded again under the person as now known is the same expectation, and says
what its alert should be:

- alerted: the gap is real for this person; the alert is open (reopened if a link had
  resolved it);
- open, with an alert already raised: the deadline had passed when the alert was raised,
  and the trigger (so the deadline) is the same: alerted again, the alert reopened;
- met, withdrawn, or resolved: the alert is resolved, the follow-up having come under the
  other records;
- filed under another person id before: the alert moves with it.

Every correction's id names the identity change (``<alert id>|<action>|<change id>``): a
replay of the same log makes the same events, and a later link or separation new ones.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from services.alerts.events import AlertEvent, alert_event_id_for
from services.processor.domain.rules.state import ALERTED, OPEN, Expectation
from services.processor.domain.rules.wording import raised


def corrected(expectation: Expectation, filed_under: str, status: str, person: str,
              change_id: str, at: datetime) -> tuple[Expectation | None, list[AlertEvent]]:
    """The expectation to save (when it changes) and the alert events that bring its alert
    (``filed_under`` a person id, ``status`` open or resolved) in line."""
    e = expectation
    again = None
    if e.status == OPEN:  # its alert was raised once the deadline passed: it still has
        e = again = dataclasses.replace(e, status=ALERTED, raised_at=e.alert_at)
    base = dataclasses.replace(raised(e, at), person_key=person)

    def event(action: str, **fields: object) -> AlertEvent:
        return dataclasses.replace(
            base, action=action, actor="identity",
            alert_event_id=alert_event_id_for(e.expectation_id, f"{action}|{change_id}"),
            **fields)  # type: ignore[arg-type]

    if e.status == ALERTED and status != "open":
        return again, [event("reopened")]
    if e.status != ALERTED and status == "open":
        return again, [event("resolved", resolution=f"records linked: {e.resolution}",
                             resolving_event_id=e.fulfilled_by)]
    if filed_under != person:
        return again, [event("moved")]
    return again, []
