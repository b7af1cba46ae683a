"""Which rules an event concerns, and whether time alone changes a person's state: the cheap
questions asked before the engine does any work.

Most events in a stream concern no rule (a missed appointment, a completed discharge) or none
of the rules that read their type (an attended appointment with a housing service), and most
people have no deadline due. The pack indexes each rule's matchers by event type once
(``Interest``); per event only the matchers that read its type are tried. A rule none of whose
matchers hold would cancel, fulfil, remember and trigger nothing, so it is not visited; when no
rule is visited and time alone changes nothing (``settled``), the state is returned as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from services.processor.domain.rules.model import Facts, Interest, Rule, RulePack
from services.processor.domain.rules.state import ALERTED, OPEN, PersonRuleState

#: (event type, payload kind) of the event that names a person's lead professional
LEAD_CHANGE = ("transition.occurred", "LEAD_PROFESSIONAL_CHANGE")


class Match(NamedTuple):
    """Which of a rule's matchers one event satisfies, worked out once per rule and event.
    (A named tuple: one is made for each rule an event concerns, and tuples are quick to make.)"""

    trigger: bool
    expect: bool
    cancel: bool
    context: bool

    @classmethod
    def of(cls, rule: Rule, facts: Facts) -> Match:
        """Every matcher of the rule tried, whatever the event's type (the reference)."""
        return cls(rule.trigger.matches(facts),
                   rule.expect is not None and rule.expect.matches(facts),
                   rule.cancel is not None and rule.cancel.matches(facts),
                   any(c.matcher.matches(facts) for c in rule.contexts))

    def roles(self, rule: Rule) -> list[str]:
        """The roles a marker of this event plays for the rule (see ``Marker.role``)."""
        roles = []
        if self.expect:
            roles.append("fulfil")
        if self.cancel:
            roles.append("cancel")
        if self.trigger and rule.kind in ("pair", "context"):
            roles.append("half" if rule.kind == "pair" else "trigger")
        if self.context:
            roles.append("context")
        return roles


def matched(interests: tuple[Interest, ...], facts: Facts) -> list[tuple[Rule, Match]]:
    """The rules the event concerns at all, in pack order, and how."""
    found = []
    for interest in interests:
        trigger, expect, cancel, contexts = (interest.trigger, interest.expect, interest.cancel,
                                             interest.contexts)
        # ``miss`` rather than ``matches``: the same decision, one call fewer per event
        triggers = trigger is not None and trigger.miss(facts) is None
        fulfils = expect is not None and expect.miss(facts) is None
        cancels = cancel is not None and cancel.miss(facts) is None
        opens = bool(contexts) and any(m.miss(facts) is None for m in contexts)
        if triggers or fulfils or cancels or opens:
            found.append((interest.rule, Match(triggers, fulfils, cancels, opens)))
    return found


def changes_lead(facts: Facts) -> bool:
    return (facts["event_type"], facts.get("payload.kind")) == LEAD_CHANGE


def settled(pack: RulePack, state: PersonRuleState, now: datetime) -> bool:
    """True when, by ``now``, time alone changes nothing for this person: no open deadline has
    passed (``fire_due``) and nothing has aged out of the state (the engine's pruning)."""
    kept_closed, kept_alerted = now - pack.horizon, now - pack.resolve_late_within
    for expectation in state.expectations:
        if expectation.status == OPEN:
            if expectation.due_at < now and expectation.history_of is None:  # held: waits
                return False
        elif expectation.due_at < (kept_alerted if expectation.status == ALERTED
                                   else kept_closed):
            return False
    retention = pack.retention
    for marker in state.markers:
        kept_for = retention.get(marker.rule_id)
        if kept_for is None or marker.occurred_at < now - kept_for:
            return False
    return True
