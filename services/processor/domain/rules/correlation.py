"""Rules that join two events: "stuck between services" pairs and risk-window contexts.

Both halves can arrive in either order. Each half is remembered as a ``Marker``; when the
second half arrives, it is matched against the remembered first halves. For a pair, the alert
is keyed on the LATER event of the earliest-completed pair (by occurred-at, then event id),
so two declines give the same alert id in either arrival order. A person has one open alert
per pair of services (``pair_key``): a further decline that pairs up joins that alert as
evidence instead of raising another. For a context rule the trigger is always the risky
event (the disengagement), found either when it arrives or when its context arrives after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.processor.domain.rules.model import Pair, Rule
from services.processor.domain.rules.state import Marker
from services.processor.domain.rules.wording import describe_event


@dataclass(frozen=True, slots=True)
class Seen:
    """An event as rules see it: ids, times and facts (a live event or a remembered one).

    An event is identified by its id together with its agency: ids are chosen by each
    agency, so two agencies' events may share one, and neither may stand for the other."""

    event_id: str
    occurred_at: datetime
    recorded_at: datetime
    facts: Mapping[str, object]
    agency: str = ""

    @classmethod
    def of(cls, marker: Marker) -> Seen:
        return cls(marker.event_id, marker.occurred_at, marker.recorded_at or marker.occurred_at,
                   marker.facts, marker.agency)

    @property
    def order(self) -> tuple[datetime, str, str]:
        return self.occurred_at, self.event_id, self.agency

    @property
    def reference(self) -> str:
        """'<agency>/<event id>': which event this is, across agencies."""
        return f"{self.agency}/{self.event_id}"

    def same_event(self, marker: Marker) -> bool:
        return marker.event_id == self.event_id and marker.agency == self.agency


def point_at_each_other(pair: Pair, a: Mapping[str, object], b: Mapping[str, object]) -> bool:
    crossed = all(a.get(x) is not None and a.get(x) == b.get(y) and a.get(y) == b.get(x)
                  for x, y in pair.cross)
    return crossed and all(a.get(path) != b.get(path) for path in pair.differ)


def partners(rule: Rule, seen: Seen, halves: list[Marker]) -> list[Seen]:
    """Every remembered half that ``seen`` completes a pair with, oldest first."""
    assert rule.pair is not None
    found = [Seen.of(m) for m in halves
             if not seen.same_event(m)
             and abs(m.occurred_at - seen.occurred_at) <= rule.pair.within
             and point_at_each_other(rule.pair, seen.facts, m.facts)]
    return sorted(found, key=lambda s: s.order)


def first_pair(seen: Seen, found: list[Seen]) -> tuple[Seen, Seen]:
    """(later, earlier): of the pairs ``seen`` completes, the one whose later event is the
    earliest, i.e. the pair that would have completed first had every event arrived in
    order. Keying the alert on it keeps the alert id independent of arrival order for two
    declines, and for more whenever the first pair was known first."""
    before = [p for p in found if p.order < seen.order]
    if before:
        return seen, before[-1]
    return found[0], seen


def pair_key(rule: Rule, facts: Mapping[str, object]) -> str:
    """The pair of services, the same from either half ('MENTAL_HEALTH|SUBSTANCE_USE')."""
    assert rule.pair is not None
    return ";".join("|".join(sorted((str(facts.get(x)), str(facts.get(y)))))
                    for x, y in rule.pair.cross)


def context_for(rule: Rule, trigger: Seen, contexts: list[Marker]) -> tuple[Seen, str] | None:
    """The most recent context that puts ``trigger`` inside its risk window, with words."""
    best: tuple[Marker, str] | None = None
    for marker in contexts:
        for context in rule.contexts:
            if (not trigger.same_event(marker) and context.matcher.matches(marker.facts)
                    and trigger.occurred_at - context.within <= marker.occurred_at
                    <= trigger.occurred_at
                    and (best is None or marker.occurred_at > best[0].occurred_at)):
                best = marker, _words(marker.facts, marker.occurred_at, context.within.days)
    return (Seen.of(best[0]), best[1]) if best else None


def triggers_for(rule: Rule, context: Seen, triggers: list[Marker]) -> list[tuple[Seen, str]]:
    """Remembered triggers that a context arriving late puts inside its risk window."""
    found = []
    for spec in rule.contexts:
        if not spec.matcher.matches(context.facts):
            continue
        for marker in triggers:
            if (not context.same_event(marker)
                    and context.occurred_at <= marker.occurred_at
                    <= context.occurred_at + spec.within):
                words = _words(context.facts, context.occurred_at, spec.within.days)
                found.append((Seen.of(marker), words))
    return sorted(found, key=lambda pair: pair[0].order)


def _words(facts: Mapping[str, object], occurred_at: datetime, days: int) -> str:
    return f"within {days} days after {describe_event(facts, occurred_at)}"
