"""Why each alert did or did not fire for one person: the engine's own fold, traced. Pure.

The person's events go through ``apply_event`` one at a time, exactly as the rules read
model folds them (each at its own recorded-at), so every opening, fulfilment, withdrawal and
alert reported here is the engine's decision, read from its outcomes. The reasons an event
did *not* count come from the same tests the engine decides with: ``Matcher.miss`` (the
first failing test of a matcher) and ``outside_window`` (another tracked thing, or before
the window opened). An event of a possible match the person index did not link is tried
against the person's expectations with those same tests and reported as a different
person, never folded.

Only near misses are listed: for an expectation, an event of a type the matcher names (or
of the same family, e.g. ``contact.missed`` for an expected ``contact.follow_up``); for a
trigger, an event of its type and kind that fails a further condition (a release with an
excluded reason). The rest concern the rule no more than a housing referral concerns a
follow-up. Nothing personal: event ids, types,
agencies, service kinds, times and vocabulary symbols only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.events import AgencyEvent
from services.processor.domain.rules.deadlines import fire_due
from services.processor.domain.rules.engine import apply_event, outside_window
from services.processor.domain.rules.model import Condition, Facts, Matcher, Rule, RulePack
from services.processor.domain.rules.state import (
    ALERTED,
    LIVE,
    OPEN,
    Expectation,
    PersonRuleState,
)
from services.processor.domain.rules.vocabulary import facts_of
from services.processor.domain.rules.wording import stamp

#: how long before a window opens an earlier event is still named as near, at least
_NEAR_BEFORE = timedelta(days=1)
#: the field that says what a transition is about (a discharge, a release...)
KIND = "payload.kind"


@dataclass(frozen=True, slots=True)
class EventRef:
    """Which event, as an operator may see it (no identifier values, no free text)."""

    agency: str
    event_id: str
    event_type: str
    service_kind: str
    occurred_at: datetime
    recorded_at: datetime

    @classmethod
    def of(cls, event: AgencyEvent) -> EventRef:
        return cls(event.source.agency, event.event_id, event.event_type,
                   event.source.service_kind, event.occurred_at, event.recorded_at)


@dataclass(frozen=True, slots=True)
class Miss:
    """An event that came near a matcher and why it did not count."""

    event: EventRef
    reason: str


@dataclass(frozen=True, slots=True)
class Other:
    """An event of a possible match the person index did not link, and who it is filed
    under, in words naming schemes and agencies only."""

    event: AgencyEvent
    note: str


@dataclass
class ExpectationTrace:
    expectation: Expectation
    trigger: EventRef | None
    near_misses: list[Miss] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return self.expectation.raised_at is not None

    @property
    def why(self) -> str:
        """Why the alert fired or did not, in one sentence."""
        e = self.expectation
        if e.status == OPEN:
            return f"not fired (yet): waiting, due {stamp(e.due_at)}"
        if not e.has_deadline:
            fired = "fired at once on the trigger"
        else:
            fired = (f"fired: the deadline {stamp(e.due_at)} passed with nothing matching "
                     "recorded by then")
        if e.status == ALERTED:
            return fired
        if self.fired:
            return f"{fired}, then {e.status}: {e.resolution}"
        return f"did not fire: {e.resolution}"


@dataclass
class RuleTrace:
    rule: Rule
    expectations: list[ExpectationTrace] = field(default_factory=list)
    #: events of the trigger's types whose conditions failed
    trigger_misses: list[Miss] = field(default_factory=list)
    #: events that matched the trigger and opened or raised nothing, and why
    idle_triggers: list[Miss] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return any(x.fired for x in self.expectations)

    @property
    def why(self) -> str:
        if self.expectations:
            fired = sum(1 for x in self.expectations if x.fired)
            return (f"{len(self.expectations)} trigger(s) opened an expectation or alert; "
                    f"{fired} fired")
        if self.idle_triggers:
            return "did not fire: its trigger matched, but opened or raised nothing"
        return "did not fire: no event matched its trigger"


@dataclass
class Trace:
    person_key: str
    at: datetime
    events: int
    rules: list[RuleTrace]


def trace(pack: RulePack, person_key: str, events: Sequence[AgencyEvent], at: datetime,
          rule_id: str | None = None, others: Iterable[Other] = ()) -> Trace:
    """The rules folded over ``events`` (in the pipeline's order), deadlines judged at
    ``at``; every rule, or only ``rule_id`` (KeyError if the pack has none)."""
    rules = [pack.by_id[rule_id]] if rule_id is not None else list(pack.rules)
    traces = {r.id: RuleTrace(r) for r in rules}
    state = PersonRuleState(person_key)
    found: dict[str, ExpectationTrace] = {}
    earlier: list[tuple[EventRef, Facts]] = []
    refs: dict[str, EventRef] = {}
    for event in events:
        ref, facts = EventRef.of(event), facts_of(event)
        refs[event.event_id] = ref
        held = {e.expectation_id for e in state.expectations}
        for x in found.values():  # why this event did not meet what was waiting for it
            if x.expectation.status in LIVE:
                _try(pack, x, ref, facts, x.expectation.expectation_id in held)
        outcome = apply_event(pack, state, event, event.recorded_at)
        state = outcome.state
        for e in outcome.changed_expectations:
            _record(pack, traces, found, e, refs.get(e.trigger_event_id), earlier)
        for r in traces.values():
            _triggered(r, event, ref, facts, found)
        earlier.append((ref, facts))
    for e, _ in fire_due(pack, state.expectations, at):
        _record(pack, traces, found, e, refs.get(e.trigger_event_id), earlier)
    for other in others:
        ref, facts = EventRef.of(other.event), facts_of(other.event)
        for x in found.values():
            if _meets(pack.by_id[x.expectation.rule_id], x.expectation, facts,
                      other.event.occurred_at):
                x.near_misses.append(Miss(ref, f"a different person: {other.note}"))
    return Trace(person_key, at, len(events), list(traces.values()))


def _record(pack: RulePack, traces: dict[str, RuleTrace], found: dict[str, ExpectationTrace],
            e: Expectation, trigger: EventRef | None,
            earlier: list[tuple[EventRef, Facts]]) -> None:
    if e.rule_id not in traces:
        return  # another rule than the one asked about
    x = found.get(e.expectation_id)
    if x is not None:
        x.expectation = e
        return
    x = found[e.expectation_id] = ExpectationTrace(e, trigger)
    traces[e.rule_id].expectations.append(x)
    rule = pack.by_id.get(e.rule_id)
    if rule is None or rule.window is None:
        return
    # Events before the trigger: the rule's lookback decides. Only those near in time are
    # worth naming (within the window's length before it opened), not years of contacts.
    since = e.window_start - rule.window.lookback - max(rule.window.reach, _NEAR_BEFORE)
    for ref, facts in earlier:
        if ref.occurred_at >= since:
            _try(pack, x, ref, facts)


def _try(pack: RulePack, x: ExpectationTrace, ref: EventRef, facts: Facts,
         held: bool = True) -> None:
    """``held``: the engine still holds the expectation (an alert is kept resolvable by a
    late event for the pack's ``resolve_late_within``, then forgotten)."""
    rule = pack.by_id.get(x.expectation.rule_id)
    if rule is None or rule.expect is None or rule.window is None:
        return
    if not _near(rule.expect.event_types, str(facts.get("event_type"))):
        return
    miss = rule.expect.miss(facts)
    reason = (words(miss, facts) if miss is not None
              else outside_window(rule, x.expectation, facts, ref.occurred_at))
    if reason is None and not held:
        until = x.expectation.due_at + pack.resolve_late_within
        reason = (f"outside the window: it happened on {stamp(ref.occurred_at)}, after the "
                  f"alert stopped taking late events on {stamp(until)}")
    if reason is not None:
        x.near_misses.append(Miss(ref, reason))


def _meets(rule: Rule, e: Expectation, facts: Facts, occurred_at: datetime) -> bool:
    return (rule.expect is not None and rule.window is not None
            and rule.expect.miss(facts) is None
            and outside_window(rule, e, facts, occurred_at) is None)


def _triggered(r: RuleTrace, event: AgencyEvent, ref: EventRef, facts: Facts,
               found: dict[str, ExpectationTrace]) -> None:
    miss = r.rule.trigger.miss(facts)
    if miss is not None:
        # A transition of another kind is not near a discharge; one of the right kind that
        # fails a qualifier (an excluded release reason) is what an operator asks about.
        if miss is not r.rule.trigger.type_test and miss.path != KIND:
            r.trigger_misses.append(Miss(ref, words(miss, facts)))
        return
    if any(x.expectation.rule_id == r.rule.id
           and (x.expectation.trigger_event_id == event.event_id
                or f"{ref.agency}/{ref.event_id}" in x.expectation.evidence)
           for x in found.values()):
        return
    r.idle_triggers.append(Miss(ref, _IDLE[r.rule.kind]))


_IDLE = {
    "deadline": "a live expectation for the same tracked thing already stands (this "
                "restates it), or the trigger lacks the date its window counts from",
    "immediate": "an alert on this trigger was raised before",
    "pair": "no other matching event pointing back at it within the pair's window",
    "context": "no context event puts it inside a risk window",
}


def why_not(matcher: Matcher, facts: Facts) -> str | None:
    """Why the facts fail ``matcher`` (its first failing test, in words), or None."""
    miss = matcher.miss(facts)
    return None if miss is None else words(miss, facts)


def words(test: Condition, facts: Facts) -> str:
    """A failed test in words. Condition paths are vocabulary fields (the rule loader
    refuses free text), so quoting the event's value there is safe."""
    actual = facts.get(test.path)
    if test.path == "event_type":
        return f"wrong event type: {actual}, expected {_values(test.value)}"
    if test.path == "source.service_kind":
        return f"wrong service kind: {actual}, expected {_values(test.value)}"
    if test.op == "not_in":
        return f"condition {test.path} not in {_values(test.value)} not met: {actual} is excluded"
    wanted = "=" if test.op == "equals" else "in"
    return f"condition {test.path} {wanted} {_values(test.value)} not met: it is {actual}"


def _values(value: object) -> str:
    if isinstance(value, tuple | frozenset | list | set):
        return " or ".join(sorted(str(v) for v in value))
    return str(value)


@functools.cache
def _families(event_types: frozenset[str]) -> frozenset[str]:
    return frozenset(t.split(".", 1)[0] for t in event_types)


def _near(event_types: frozenset[str], event_type: str) -> bool:
    """An event worth naming as a near miss: a type the matcher names, or one of its family."""
    return (event_type in event_types
            or event_type.split(".", 1)[0] in _families(event_types))
