"""Why did (or didn't) a rule fire for this person? Plain-language answers for operators.

Built from the person's rule state alone: expectations (with their status and the reason they
closed) and the events remembered for each rule. No personal data: ids of events and rules,
times, statuses.
"""

from __future__ import annotations

from collections import Counter

from services.processor.domain.rules.model import Matcher, Rule, RulePack
from services.processor.domain.rules.state import PersonRuleState
from services.processor.domain.rules.wording import describe_window, stamp

_STATUS_WORDS = {
    "open": "waiting; not yet due",
    "fulfilled": "met in time, no alert",
    "withdrawn": "withdrawn",
    "alerted": "alert raised and still open",
    "resolved": "alert raised, then resolved",
}


def explain(pack: RulePack, state: PersonRuleState, rule_id: str | None = None) -> list[str]:
    """One paragraph per rule (or just ``rule_id``), oldest trigger first."""
    rules = [r for r in pack.rules if rule_id is None or r.id == rule_id]
    if not rules:
        return [f"no rule '{rule_id}' in rule pack {pack.version}"]
    return [_explain_rule(pack, rule, state) for rule in rules]


def _explain_rule(pack: RulePack, rule: Rule, state: PersonRuleState) -> str:
    lines = [f"{rule.id} ({rule.kind}, version {rule.version}): fires on {_matcher(rule.trigger)}"]
    if rule.window is not None and rule.expect is not None:
        lines[0] += f", expects {_matcher(rule.expect)} {describe_window(rule.window)}"
    expectations = sorted((e for e in state.expectations if e.rule_id == rule.id),
                          key=lambda e: e.window_start)
    for e in expectations:
        line = (f"- trigger event {e.trigger_event_id} at {stamp(e.window_start)}: "
                f"{_STATUS_WORDS.get(e.status, e.status)}")
        if e.has_deadline:
            line += f" (due {stamp(e.due_at)})"
        if e.resolution:
            line += f"; {e.resolution}"
        lines.append(line)
    if not expectations:
        days = pack.horizon.days
        lines.append(f"- did not fire: no matching trigger among the events kept for this "
                     f"person (the last {days} days)")
    roles = Counter(m.role for m in state.markers if m.rule_id == rule.id)
    if roles:
        lines.append("- remembered events: " + ", ".join(
            f"{count} {role}" for role, count in sorted(roles.items())))
    return "\n".join(lines)


def _matcher(matcher: Matcher) -> str:
    text = " or ".join(sorted(matcher.event_types))
    conditions = [f"{c.path} {c.op.replace('_', ' ')} {c.value}" for c in matcher.conditions]
    return text + (f" where {' and '.join(conditions)}" if conditions else "")
