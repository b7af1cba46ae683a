"""Alert events as a frozen dataclass, mirroring ``schemas/alert_event.v*.avsc`` field for field.

An alert's life (raised, resolved, moved or reopened when records are linked or separated)
and a duty team's work on it (acknowledged, assigned, commented, snoozed, woke, escalated,
unacknowledged, resolved with an outcome) is a series of these events on the alerts topic.
Ids are deterministic, PagerDuty dedup-key style, so a replay or a second worker that
notices the same deadline produces the very same event and the projector's idempotent write swallows it:

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
                        "evidence", "moved", "reopened", "commented", "snoozed", "woke",
                        "unacknowledged")


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
    detail: str | None = None             # "evidence": what that event was (no identifiers);
    #                                       "escalated": why (not acknowledged, undeliverable)
    team_id: str | None = None            # "raised", "escalated": the team it goes to
    tier: int | None = None               # "escalated": the tier it reached
    assignee: str | None = None           # "assigned": the member (None: unassigned)
    until: datetime | None = None         # "snoozed": until when
    comment: str | None = None            # sealed free text (comments, a resolution's note)
    version: int | None = None            # a duty team's action: the version it was based on
    area: str | None = None               # where the trigger happened (an ONS area code)
    schema_version: int = 4


def alert_id_for(rule_id: str, trigger_agency: str, trigger_event_id: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{rule_id}|{trigger_agency}/{trigger_event_id}"))


def alert_event_id_for(alert_id: str, action: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{alert_id}|{action}"))


def action_event_id_for(alert_id: str, version: int) -> str:
    """A duty team's action (or a timer's) on the alert at ``version``."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{alert_id}|v{version}"))
