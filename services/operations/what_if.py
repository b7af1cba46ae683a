"""Rule what-if, the pure part: two rule packs folded side by side over the same history, and
the difference in the alerts they raise, per rule, counted (never named).

Each pack has its own rule state per person, folded with the engine's own step
(``apply_event``, the event's recorded-at as ``now``: what the live rules read model does),
then the deadline sweep at one ``now`` shared by both packs. An alert is matched across the
packs by its deterministic id (uuid5 of rule and trigger event), so "the same alert" means the
same rule fired on the same trigger; its deadline or severity may differ. Expectations still
open at ``now`` are not alerts: they are counted as "would be due" (later than ``now``).

Nothing here reads a clock, a database or a topic (``services/operations/dry_run.py`` feeds
it the archive or the log).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.alerts.events import AlertEvent
from services.common.events import AgencyEvent
from services.processor.domain.rules import PersonRuleState, RulePack, apply_event, fire_due
from services.processor.domain.rules.state import OPEN


@dataclass(frozen=True, slots=True)
class Raised:
    """An alert as one pack raised it (the person id is kept only to count people)."""

    alert_id: str
    rule_id: str
    person_key: str
    at: datetime
    due_at: datetime | None
    severity: str


@dataclass(frozen=True, slots=True)
class Pending:
    """An expectation still open at ``now``: an alert only if nothing comes by ``due_at``."""

    expectation_id: str
    rule_id: str
    person_key: str
    due_at: datetime


@dataclass
class PackRun:
    """One rule pack folded over history, a person's state at a time."""

    pack: RulePack
    states: dict[str, PersonRuleState] = field(default_factory=dict)
    raised: dict[str, Raised] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)

    def fold(self, events: Iterable[AgencyEvent]) -> None:
        """Each event in the order the live pipeline applied it (one partition's order)."""
        pack, states = self.pack, self.states
        for event in events:
            person = event.person_key
            state = states.get(person)
            outcome = apply_event(pack, state or PersonRuleState(person), event,
                                  event.recorded_at)
            if outcome.state is not state:
                states[person] = outcome.state
            if outcome.alert_events:
                self.note(outcome.alert_events)

    def note(self, alert_events: Iterable[AlertEvent]) -> None:
        for a in alert_events:
            if a.action == "raised":
                self.raised[a.alert_id] = Raised(a.alert_id, a.rule_id, a.person_key, a.at,
                                                 a.due_at, a.severity)

    def finish(self, now: datetime) -> None:
        """The sweep the deadline timer would have made by ``now``; what stays open then."""
        for state in self.states.values():
            self.note(alert for _, alert in fire_due(self.pack, state.expectations, now))
            for e in state.expectations:
                if e.status == OPEN and e.due_at >= now:
                    self.pending[e.expectation_id] = Pending(e.expectation_id, e.rule_id,
                                                             e.person_key, e.due_at)


@dataclass(frozen=True, slots=True)
class Tally:
    alerts: int
    people: int

    @classmethod
    def of(cls, items: Iterable[Raised | Pending]) -> Tally:
        people, n = set(), 0
        for item in items:
            n += 1
            people.add(item.person_key)
        return cls(n, len(people))


@dataclass(frozen=True, slots=True)
class RuleDifference:
    """One rule's alerts under the current and the changed pack, and what differs."""

    rule_id: str
    current: Tally
    changed: Tally
    new: Tally                  # raised by the changed pack only
    gone: Tally                 # raised by the current pack only
    deadline_changed: Tally     # raised by both, with another deadline
    severity_changed: Tally     # raised by both, with another severity
    due_current: Tally          # would be due after ``now`` (open expectations), current
    due_changed: Tally          # the same, changed pack

    @property
    def differs(self) -> bool:
        return bool(self.new.alerts or self.gone.alerts or self.deadline_changed.alerts
                    or self.severity_changed.alerts
                    or self.due_current != self.due_changed)


def compare(current: PackRun, changed: PackRun, *, rule: str | None = None,
            since: datetime | None = None) -> list[RuleDifference]:
    """Per rule (every rule either pack has, or ``rule`` only): the alerts raised at or after
    ``since`` (all if None) by each pack, matched by alert id."""
    def kept(raised: dict[str, Raised]) -> dict[str, Raised]:
        return {k: r for k, r in raised.items() if (rule is None or r.rule_id == rule)
                and (since is None or r.at >= since)}

    before, after = kept(current.raised), kept(changed.raised)
    rules = [r.id for r in current.pack.rules]
    rules += [r.id for r in changed.pack.rules if r.id not in rules]
    if rule is not None:
        rules = [rule]
    differences = []
    for rule_id in rules:
        mine = {k: r for k, r in before.items() if r.rule_id == rule_id}
        theirs = {k: r for k, r in after.items() if r.rule_id == rule_id}
        both = [(mine[k], theirs[k]) for k in mine.keys() & theirs.keys()]
        differences.append(RuleDifference(
            rule_id,
            current=Tally.of(mine.values()), changed=Tally.of(theirs.values()),
            new=Tally.of(r for k, r in theirs.items() if k not in mine),
            gone=Tally.of(r for k, r in mine.items() if k not in theirs),
            deadline_changed=Tally.of(b for a, b in both if a.due_at != b.due_at),
            severity_changed=Tally.of(b for a, b in both if a.severity != b.severity),
            due_current=Tally.of(p for p in current.pending.values() if p.rule_id == rule_id),
            due_changed=Tally.of(p for p in changed.pending.values() if p.rule_id == rule_id)))
    return differences


def report(differences: Sequence[RuleDifference], *, events: int, now: datetime,
           since: datetime | None, current: RulePack, changed: RulePack) -> dict[str, object]:
    """The what-if as JSON-ready data: counts only, no person id, no identifier."""
    def tally(t: Tally) -> dict[str, int]:
        return {"alerts": t.alerts, "people": t.people}

    return {
        "events": events,
        "now": now.isoformat(),
        "since": since.isoformat() if since is not None else None,
        "current_pack": current.version,
        "changed_pack": changed.version,
        "differs": any(d.differs for d in differences),
        "rules": [{
            "rule": d.rule_id,
            "current": tally(d.current), "changed": tally(d.changed),
            "new": tally(d.new), "gone": tally(d.gone),
            "deadline_changed": tally(d.deadline_changed),
            "severity_changed": tally(d.severity_changed),
            "would_be_due": {"current": tally(d.due_current),
                             "changed": tally(d.due_changed)},
        } for d in differences],
    }
