"""Builders and a one-person harness for rule tests: events in, alerts out, clock in hand."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

from services.alerts.events import AlertEvent
from services.common.events import (
    AgencyEvent,
    Contact,
    Discharge,
    Identifier,
    Payload,
    Referral,
    Source,
    Transition,
)
from services.processor.domain.rules import (
    Outcome,
    PersonRuleState,
    apply_event,
    default_pack_path,
    fire_due,
    load_rule_pack,
)

PACK = load_rule_pack(default_pack_path())
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, GMT
H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)
NHS = "9434765919"
AREA = "E08000035"

AGENCY = {
    "PRISON": "hmp-leeds", "PROBATION": "probation-yh", "ACUTE_HOSPITAL": "lth-acute",
    "MENTAL_HEALTH": "mh-trust-leeds", "HOUSING": "leeds-housing",
    "SUBSTANCE_USE": "forward-leeds", "SOCIAL_CARE": "leeds-asc", "LEAVING_CARE": "leeds-lc",
    "MARAC": "leeds-marac", "PRIMARY_CARE": "gp-leeds", "VOLUNTARY": "vcs-leeds",
}
_ids = itertools.count(1)


def new_id() -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"test-event-{next(_ids)}"))


def ev(event_type: str, payload: Payload, at: datetime = T0, *, delay: timedelta = timedelta(),
       by: str = "PRISON", team: str | None = "duty", area: str | None = AREA,
       event_id: str | None = None, nhs: str = NHS) -> AgencyEvent:
    source = Source(AGENCY.get(by, "other"), by, "sys", team, area)
    return AgencyEvent(event_id or new_id(), event_type, at, at + delay, source,
                       (Identifier("nhs_number", nhs),), payload)


def transition(action: str, kind: str, at: datetime = T0, *, tid: str = "t-1",
               scheduled_for: date | None = None, reason: str | None = None,
               accommodation: str | None = None, treated: bool | None = None,
               **kw: object) -> AgencyEvent:
    payload = Transition(tid, kind, scheduled_for, reason, accommodation, None, treated)
    return ev(f"transition.{action}", payload, at, **kw)  # type: ignore[arg-type]


def referral(action: str, to: str, at: datetime = T0, *, rid: str = "r-1",
             decline_reason: str | None = None, cites: str | None = None,
             sla: int | None = None, **kw: object) -> AgencyEvent:
    payload = Referral(rid, AGENCY.get(to, "other"), to, None, decline_reason, cites, None, sla)
    return ev(f"referral.{action}", payload, at, **kw)  # type: ignore[arg-type]


def contact(action: str, at: datetime = T0, *, by: str = "MENTAL_HEALTH",
            **kw: object) -> AgencyEvent:
    return ev(f"contact.{action}", Contact(new_id()), at, by=by, **kw)  # type: ignore[arg-type]


def discharge(action: str, at: datetime = T0, *, by: str = "SUBSTANCE_USE",
              **kw: object) -> AgencyEvent:
    return ev(f"discharge.{action}", Discharge(), at, by=by, **kw)  # type: ignore[arg-type]


class Person:
    """One person's rule state, fed in log order with a stream clock (highest recorded_at).

    ``worker_clock`` applies each event at its own recorded_at instead, as the worker's rule
    stage does: an event that arrives late then runs with a clock behind what came before."""

    def __init__(self, person_key: str = f"nhs_number:{NHS}", pack=PACK,  # type: ignore[no-untyped-def]
                 worker_clock: bool = False) -> None:
        self.pack = pack
        self.worker_clock = worker_clock
        self.state = PersonRuleState(person_key)
        self.clock = datetime.min.replace(tzinfo=UTC)
        self.alerts: list[AlertEvent] = []
        self.outcomes: list[Outcome] = []

    def apply(self, *events: AgencyEvent, now: datetime | None = None) -> list[AlertEvent]:
        """Apply in order; ``now`` is the partition's stream clock (default: this person's)."""
        new: list[AlertEvent] = []
        for event in events:
            self.clock = max(self.clock, event.recorded_at, now or self.clock)
            clock = event.recorded_at if self.worker_clock else self.clock
            outcome = apply_event(self.pack, self.state, event, clock)
            self.state = outcome.state
            self.outcomes.append(outcome)
            new += outcome.alert_events
        self.alerts += new
        return new

    def tick(self, now: datetime) -> list[AlertEvent]:
        """What the deadline timer does: fire every open expectation past due by ``now``.
        The timer never moves the stream clock."""
        fired = fire_due(self.pack, self.state.expectations, now)
        self.state = self.state.with_expectations(e for e, _ in fired)
        self.alerts += [a for _, a in fired]
        return [a for _, a in fired]

    def of(self, rule_id: str, action: str | None = None) -> list[AlertEvent]:
        return [a for a in self.alerts
                if a.rule_id == rule_id and (action is None or a.action == action)]

    def expectations(self, rule_id: str) -> list:  # type: ignore[type-arg]
        return [e for e in self.state.expectations if e.rule_id == rule_id]
