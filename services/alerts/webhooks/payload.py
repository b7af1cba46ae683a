"""A delivery's body: one alert event as a CloudEvent (JSON, structured mode): pure.

The CloudEvents attributes: ``specversion`` 1.0, ``id`` the alert event's id (the same for
every team and endpoint it reaches), ``source`` ``/joinedup/alerts``, ``type``
``uk.joinedup.alert.<action>``, ``subject`` the alert's id, ``time`` when the event reached the
team's feed, ``datacontenttype`` application/json.

``data`` comes in two shapes, chosen per endpoint:

* full: what a duty team needs to act without a second call: the alert, its team, the
  opaque person id (never an identifier value), the rule and its source, and the link to it
  on the board;
* signal-only: the alert id, the action, the version and the link, nothing about the
  person or the rule: for a receiver outside the agencies' network (a pager or chat
  service) that only says "look at the board".

``action`` and ``version`` are the event's: a receiver orders one alert's events by version
(retries and concurrency mean they may arrive out of order). The other fields are the
alert as it is when the attempt is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

SOURCE: Final = "/joinedup/alerts"
TYPE_PREFIX: Final = "uk.joinedup.alert."
SIGNAL_FIELDS: Final = ("alert_id", "action", "version", "link")


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One alert event as the team feed recorded it."""

    alert_id: str
    alert_event_id: str
    action: str
    version: int
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class AlertView:
    """The alert as a full body shows it (``team_*``: the team working it now)."""

    team_id: str | None
    team_name: str | None
    severity: str
    rule_id: str
    title: str
    explanation: str
    source_reference: str
    due_at: datetime | None
    raised_at: datetime
    status: str
    person_key: str


@dataclass(frozen=True, slots=True)
class Body:
    content_type: str
    content: bytes


def alert_link(public_url: str, alert_id: str) -> str:
    return f"{public_url.rstrip('/')}/alerts/{alert_id}"


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_data(event: FeedEvent, alert: AlertView | None, signal_only: bool,
               public_url: str) -> dict[str, Any]:
    """The ``data`` of the CloudEvent (an alert that cannot be read gets the signal-only
    shape: a receiver still learns to look)."""
    signal: dict[str, Any] = {"alert_id": event.alert_id, "action": event.action,
                              "version": event.version,
                              "link": alert_link(public_url, event.alert_id)}
    if signal_only or alert is None:
        return signal
    return {**signal,
            "team_id": alert.team_id, "team_name": alert.team_name,
            "severity": alert.severity, "rule_id": alert.rule_id, "title": alert.title,
            "explanation": alert.explanation, "source_reference": alert.source_reference,
            "due_at": _when(alert.due_at), "raised_at": _when(alert.raised_at),
            "status": alert.status, "person_id": alert.person_key}


def cloud_event(event: FeedEvent, alert: AlertView | None, signal_only: bool,
                public_url: str) -> CloudEvent:
    return CloudEvent({
        "specversion": "1.0", "id": event.alert_event_id, "source": SOURCE,
        "type": TYPE_PREFIX + event.action, "subject": event.alert_id,
        "time": event.recorded_at.astimezone(UTC), "datacontenttype": "application/json",
    }, event_data(event, alert, signal_only, public_url))


def body(event: FeedEvent, alert: AlertView | None, signal_only: bool, public_url: str
         ) -> Body:
    """The request body and its content type (CloudEvents structured mode, JSON)."""
    message = to_structured_event(cloud_event(event, alert, signal_only, public_url))
    content_type = next((v for k, v in message.headers.items() if k.lower() == "content-type"),
                        "application/cloudevents+json")
    return Body(content_type, message.body)
