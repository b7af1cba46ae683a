"""What a rule is, once the rule file has been read and checked (see ``loader.py``).

Rules never see an ``AgencyEvent`` directly: they see its *facts*, a flat mapping of
``"event_type"``, ``"payload.<field>"`` and ``"source.<field>"`` to values (dates as ISO
strings). A remembered event (a ``Marker``) keeps the same facts, so one matcher works on a
live event and on one that arrived earlier, which is what makes out-of-order arrival easy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

Facts = Mapping[str, object]

#: deadline: expect a second event within a window; immediate: alert on the trigger itself;
#: pair: two matching events that point at each other (stuck between services);
#: context: the trigger happened inside a risk window opened by an earlier event.
RULE_KINDS: Final = ("deadline", "immediate", "pair", "context")
SEVERITIES: Final = ("low", "medium", "high", "critical")
#: Placeholders a route template may use; all come from the trigger's source.
ROUTE_FIELDS: Final = ("area", "team", "agency", "service_kind")
LEAD_PROFESSIONAL: Final = "lead-professional"


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a fact: ``equals`` a value, is ``in`` or ``not_in`` a set of values."""

    path: str
    op: str
    value: object

    def holds(self, facts: Facts) -> bool:
        actual = facts.get(self.path)
        if self.op == "equals":
            return actual == self.value
        if self.op == "in":
            return actual in self.value  # type: ignore[operator]
        return actual not in self.value  # type: ignore[operator]  # not_in (None passes)


@dataclass(frozen=True, slots=True)
class Matcher:
    event_types: frozenset[str]
    conditions: tuple[Condition, ...] = ()
    #: paths whose value must equal the trigger's (e.g. the same referral_id)
    same: tuple[str, ...] = ()
    #: the event-type test as a condition, so that a miss always names the test that failed
    type_test: Condition = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type_test", Condition("event_type", "in", self.event_types))

    def miss(self, facts: Facts) -> Condition | None:
        """The first test the facts fail (the event type, then each condition in order), or
        None when they match. The one decision: ``matches`` is this, and an explanation
        (``trace.py``) names the condition it returns."""
        if facts.get("event_type") not in self.event_types:
            return self.type_test
        for condition in self.conditions:
            if not condition.holds(facts):
                return condition
        return None

    def matches(self, facts: Facts) -> bool:
        return self.miss(facts) is None

    def correlates(self, facts: Facts, trigger: Facts) -> bool:
        return all(facts.get(p) is not None and facts.get(p) == trigger.get(p) for p in self.same)

    @property
    def paths(self) -> frozenset[str]:
        return frozenset([c.path for c in self.conditions] + list(self.same))


@dataclass(frozen=True, slots=True)
class Window:
    """When the expected event is due, and how far before the trigger it may already count.

    Exactly one of: ``within`` (after the trigger's occurred-at), ``working_days`` (end of
    the Nth England-and-Wales working day, optionally read from ``working_days_field``), or
    ``before`` a date field ``of`` the trigger (e.g. 56 days before the scheduled release).
    """

    within: timedelta | None = None
    working_days: int | None = None
    working_days_field: str | None = None
    before: timedelta | None = None
    of: str | None = None
    lookback: timedelta = timedelta(0)

    @property
    def reach(self) -> timedelta:
        """An upper bound of trigger-to-deadline distance, for keeping markers long enough."""
        if self.within is not None:
            return self.within
        if self.working_days is not None:
            # A long SLA given in the event may exceed the default; allow for it generously.
            return timedelta(days=max(self.working_days, 20) * 2 + 14)
        return timedelta(0)  # due before the scheduled date: never after the trigger


@dataclass(frozen=True, slots=True)
class Pair:
    """Two trigger-matching events within ``within`` of each other whose ``cross`` fields point
    at each other (a.x == b.y and a.y == b.x) and whose ``differ`` fields differ."""

    within: timedelta
    cross: tuple[tuple[str, str], ...]
    differ: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """An earlier event that puts the person in a risk window for ``within`` after it."""

    matcher: Matcher
    within: timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str
    version: str
    title: str
    explanation: str
    source: str
    severity: str
    route: str
    expected: str                       # what is looked for, in words, for the alert
    trigger: Matcher
    expect: Matcher | None = None       # deadline rules
    window: Window | None = None        # deadline rules
    cancel: Matcher | None = None       # withdraws expectations; ``same`` keys the trigger
    pair: Pair | None = None
    contexts: tuple[Context, ...] = ()
    #: the sensitivity category an alert of the rule reveals (who may see it: services/reads)
    category: str = "GENERAL"

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        """Every matcher of the rule: an event none of them matches is nothing to the rule."""
        own = (self.trigger, self.expect, self.cancel)
        return tuple(m for m in own if m is not None) + tuple(c.matcher for c in self.contexts)

    @property
    def event_types(self) -> frozenset[str]:
        """The event types the rule can react to or remember (any of its matchers' types)."""
        return frozenset(t for matcher in self.matchers for t in matcher.event_types)

    def retention(self, grace: timedelta) -> timedelta:
        """How long a remembered event can still matter to this rule."""
        spans = [grace]
        if self.window is not None:
            spans.append(self.window.lookback + self.window.reach + grace)
        if self.pair is not None:
            spans.append(self.pair.within + grace)
        spans += [c.within + grace for c in self.contexts]
        return max(spans)


@dataclass(frozen=True, slots=True)
class Interest:
    """A rule's matchers that can match events of one type (None, or left out: cannot)."""

    rule: Rule
    trigger: Matcher | None
    expect: Matcher | None
    cancel: Matcher | None
    contexts: tuple[Matcher, ...]

    @classmethod
    def of(cls, rule: Rule, event_type: str) -> Interest:
        def reads(matcher: Matcher | None) -> Matcher | None:
            return matcher if matcher is not None and event_type in matcher.event_types else None
        return cls(rule, reads(rule.trigger), reads(rule.expect), reads(rule.cancel),
                   tuple(c.matcher for c in rule.contexts if event_type in c.matcher.event_types))


@dataclass(frozen=True, slots=True)
class RulePack:
    version: str
    rules: tuple[Rule, ...]
    #: an alerted expectation stays in the person's state (resolvable by a late event) this long
    resolve_late_within: timedelta = timedelta(days=365)
    #: markers are kept this much longer than a rule's windows, for events that arrive late
    late_arrival_grace: timedelta = timedelta(days=30)
    by_id: dict[str, Rule] = field(default_factory=dict, compare=False, repr=False)
    #: fact paths a marker keeps (filled once: the set of paths any rule reads)
    remembered: set[str] = field(default_factory=set, compare=False, repr=False)
    #: rule id -> how long its markers are kept (filled once; read for every event)
    retention: dict[str, timedelta] = field(default_factory=dict, compare=False, repr=False)
    #: event type -> the rules, in pack order, that can react to it, with their matchers for
    #: that type (built once: most events concern few rules or none; each visits only these)
    by_event_type: dict[str, tuple[Interest, ...]] = field(default_factory=dict, init=False,
                                                           compare=False, repr=False)
    #: ``remembered`` sorted, the order a marker keeps its attributes in
    remembered_in_order: tuple[str, ...] = field(default=(), init=False, compare=False,
                                                 repr=False)
    _horizon: timedelta = field(default=timedelta(0), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id.update({rule.id: rule for rule in self.rules})
        self.remembered.update(self._remembered_paths())
        self.retention.update({r.id: r.retention(self.late_arrival_grace) for r in self.rules})
        # Derived indexes are set once here (the class is frozen) and read for every event.
        types = sorted({t for rule in self.rules for t in rule.event_types})
        object.__setattr__(self, "by_event_type", {
            t: tuple(Interest.of(r, t) for r in self.rules if t in r.event_types) for t in types})
        object.__setattr__(self, "remembered_in_order", tuple(sorted(self.remembered)))
        object.__setattr__(self, "_horizon",
                           max(self.retention.values(), default=self.late_arrival_grace))

    @property
    def horizon(self) -> timedelta:
        """The longest a marker of any rule is kept; closed expectations are kept as long."""
        return self._horizon

    def interested_in(self, event_type: str) -> tuple[Interest, ...]:
        """The rules an event of this type may concern, in pack order."""
        return self.by_event_type.get(event_type, ())

    def _remembered_paths(self) -> frozenset[str]:
        """Fact paths a marker must keep for any rule to judge it later."""
        paths: set[str] = {"event_type", "source.agency", "source.team", "source.area",
                           "source.service_kind"}
        for rule in self.rules:
            for matcher in (rule.trigger, rule.expect, rule.cancel):
                if matcher is not None:
                    paths |= matcher.paths
            for context in rule.contexts:
                paths |= context.matcher.paths
            if rule.pair is not None:
                paths |= {p for pair in rule.pair.cross for p in pair} | set(rule.pair.differ)
            if rule.window is not None:
                paths |= {p for p in (rule.window.working_days_field, rule.window.of) if p}
        return frozenset(paths)
