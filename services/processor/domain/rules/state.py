"""The durable state of the rules for one person: expectations and remembered events.

Everything here is a frozen value, stored by the processor in PostgreSQL and loaded back per
person before that person's events are applied. Nothing lives only in memory, so a restart or
a replay loses no deadline (Axon's in-memory deadlines are the failure this avoids).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.alerts.events import AlertEvent

OPEN: Final = "open"
FULFILLED: Final = "fulfilled"
WITHDRAWN: Final = "withdrawn"
ALERTED: Final = "alerted"
RESOLVED: Final = "resolved"
STATUSES: Final = (OPEN, FULFILLED, WITHDRAWN, ALERTED, RESOLVED)
LIVE: Final = frozenset({OPEN, ALERTED})  # the statuses a later event can still change


@dataclass(frozen=True, slots=True)
class Expectation:
    """A rule waiting for something (or, for immediate rules, the alert it raised).

    ``expectation_id`` is the alert id it raises: uuid5(rule, trigger event). The alert
    text is written when the expectation opens, so firing it needs neither the rule pack nor
    the trigger event (a timer firing rows straight from PostgreSQL has neither).
    """

    expectation_id: str
    rule_id: str
    rule_version: str
    person_key: str
    trigger_event_id: str
    window_start: datetime
    due_at: datetime
    status: str
    correlation: tuple[tuple[str, object], ...] = ()
    fulfilled_by: str | None = None
    duty_team: str = ""
    severity: str = ""
    title: str = ""
    explanation: str = ""
    expected: str = ""
    source_reference: str = ""
    has_deadline: bool = True        # False for immediate, pair and context alerts
    known_at: datetime | None = None  # the trigger's recorded_at: no alert before we knew
    raised_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    #: the events an alert stands on, as '<agency>/<event id>' (a pair alert: every decline
    #: that paired up); a later event already here adds nothing
    evidence: tuple[str, ...] = ()
    #: where the trigger happened (its source's area, an ONS code): a panel's area
    area: str | None = None
    #: opened by this agency's history while it backfills (services/processor/domain/backfill.py):
    #: held, judged by neither a later event nor the timer until the timer releases it
    history_of: str | None = None

    @property
    def alert_at(self) -> datetime:
        """When a deadline alert is raised: the deadline itself, whoever notices first; if the
        trigger was only recorded after its deadline, the moment it was recorded."""
        return max(self.due_at, self.known_at or self.due_at)

    @property
    def keys(self) -> dict[str, object]:
        return dict(self.correlation)


@dataclass(frozen=True, slots=True)
class Marker:
    """A past event a rule may need later: a fulfilment that arrived before its trigger, one
    half of a pair, the context of a risk window, a cancellation. ``attributes`` keeps only
    the fact paths rules read (symbols and reference ids, no free text)."""

    person_key: str
    rule_id: str
    role: str  # fulfil | cancel | half | context | trigger
    event_id: str
    occurred_at: datetime
    attributes: tuple[tuple[str, object], ...] = ()
    recorded_at: datetime | None = None
    agency: str = ""  # the event's publishing agency: with event_id, which event it was

    @property
    def facts(self) -> dict[str, object]:
        return dict(self.attributes)


@dataclass(frozen=True, slots=True)
class PersonRuleState:
    """All a person's rule state. ``expectations`` holds every expectation within the pack's
    horizon, closed ones included: a duplicate trigger must find its fulfilled expectation
    rather than open it again."""

    person_key: str
    expectations: tuple[Expectation, ...] = ()
    markers: tuple[Marker, ...] = ()
    lead_team: str | None = None
    lead_team_since: datetime | None = None

    def with_expectations(self, changed: Iterable[Expectation]) -> PersonRuleState:
        """This state with ``changed`` expectations replacing those with the same id."""
        by_id = {e.expectation_id: e for e in self.expectations}
        by_id.update({e.expectation_id: e for e in changed})
        return dataclasses.replace(self, expectations=tuple(by_id.values()))


@dataclass(frozen=True, slots=True)
class Outcome:
    state: PersonRuleState
    changed_expectations: list[Expectation]  # upsert by expectation_id, final status
    new_markers: list[Marker]                # insert (event_id, rule_id, role) if absent
    alert_events: list[AlertEvent]           # publish after the effects are committed
    pruned_markers: list[Marker]             # no longer needed by any rule: may be deleted
