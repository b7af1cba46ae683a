"""Alert events as a frozen dataclass, mirroring ``schemas/alert_event.v*.avsc`` field for field.

An alert's life (raised, resolved, moved or reopened when records are linked or separated,
later acknowledged, assigned, escalated) is a series of
these events on the alerts topic. Ids are deterministic, PagerDuty dedup-key style, so a
replay or a second worker that notices the same deadline produces the very same event and
the projector's idempotent write swallows it:

* ``alert_id = uuid5(ALERT_NAMESPACE, "<rule id>|<agency>/<trigger event id>")`` (event ids
  are unique within their publishing agency only, so the agency is part of it). Nothing
  personal goes in, not even the person id: an alert is its rule and trigger, and follows
  the trigger to whichever person its records turn out to be.
* ``alert_event_id = uuid5(ALERT_NAMESPACE, "<alert id>|<action>")`` (one raised and at most
  one resolved per alert; human actions later add a sequence number to the name). Evidence
  names the event it adds: ``"<alert id>|evidence|<agency>/<event id>"``, so the same decline
  seen twice adds nothing. What a link or separation of records changes (``moved``,
  ``reopened``, ``resolved``) names the identity change too: ``"<alert id>|<action>|<change
  id>"``, so a replay repeats it and a second link later is a new event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

#: Fixed forever: changing it would change every alert id and break de-duplication.
ALERT_NAMESPACE: Final = uuid.UUID("c9d3954e-c457-5fd5-a5a4-21b6334b1eff")

ALERT_ACTIONS: Final = ("raised", "resolved", "acknowledged", "assigned", "escalated",
                        "evidence", "moved", "reopened")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_event_id: str
    alert_id: str
    action: str
    at: datetime                 # stream time of the change (a deadline alert: the deadline)
    person_key: str
    rule_id: str
    rule_version: str
    severity: str
    duty_team: str
    title: str
    explanation: str
    source_reference: str
    trigger_event_id: str
    expected: str                # what was looked for and not found
    window_start: datetime
    due_at: datetime | None = None
    resolution: str | None = None
    resolving_event_id: str | None = None
    actor: str | None = None
    evidence_event_id: str | None = None  # "evidence": the later event the alert stands on
    evidence_agency: str | None = None
    detail: str | None = None             # "evidence": what that event was (no identifiers)
    schema_version: int = 3


def alert_id_for(rule_id: str, trigger_agency: str, trigger_event_id: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{rule_id}|{trigger_agency}/{trigger_event_id}"))


def alert_event_id_for(alert_id: str, action: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{alert_id}|{action}"))
