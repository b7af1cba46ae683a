"""Why did (or didn't) a rule fire for this person? Plain-language answers for operators.

``explain`` answers from the person's rule state alone: expectations (with their status and
the reason they closed) and the events remembered for each rule. ``render_trace`` and
``trace_json`` answer from a trace of the engine's fold over the person's events
(``trace.py``): which trigger opened which expectation, and why each event near it did or
did not count. No personal data: ids of events and rules, agencies, times, statuses.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from services.processor.domain.rules.model import Matcher, Rule, RulePack
from services.processor.domain.rules.state import PersonRuleState
from services.processor.domain.rules.trace import (
    EventRef,
    ExpectationTrace,
    Miss,
    RuleTrace,
    Trace,
)
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


# --- a traced fold (``trace.py``), for ``joinedup explain`` ---------------------------------

def render_trace(found: Trace) -> list[str]:
    """The trace as an operator reads it: one paragraph per rule."""
    head = (f"person {found.person_key}: {found.events} events folded, deadlines judged at "
            f"{stamp(found.at)}")
    return [head] + [_render_rule(r) for r in found.rules]


def _render_rule(r: RuleTrace) -> str:
    rule = r.rule
    lines = [f"{rule.id} ({rule.kind}, version {rule.version}): fires on {_matcher(rule.trigger)}"]
    if rule.window is not None and rule.expect is not None:
        lines[0] += f", expects {_matcher(rule.expect)} {describe_window(rule.window)}"
    lines.append(f"  {r.why}")
    for x in r.expectations:
        e = x.expectation
        trigger = _ref(x.trigger) if x.trigger else f"event {e.trigger_event_id}"
        due = f", due {stamp(e.due_at)}" if e.has_deadline else ""
        lines.append(f"  - trigger {trigger}: alert id {e.expectation_id}{due}")
        lines.append(f"    {x.why}")
        lines += [f"    near miss {_ref(m.event)}: {m.reason}" for m in x.near_misses]
    lines += [f"  - trigger not matched by {_ref(m.event)}: {m.reason}" for m in r.trigger_misses]
    lines += [f"  - trigger matched by {_ref(m.event)}, nothing opened: {m.reason}"
              for m in r.idle_triggers]
    return "\n".join(lines)


def _ref(ref: EventRef) -> str:
    return (f"{ref.event_type} {ref.agency}/{ref.event_id} ({ref.service_kind}, occurred "
            f"{stamp(ref.occurred_at)}, recorded {stamp(ref.recorded_at)})")


def trace_json(found: Trace) -> dict[str, Any]:
    """The trace for scripts: plain JSON-able values (times in ISO 8601)."""
    return {
        "person_id": found.person_key, "at": found.at.isoformat(), "events": found.events,
        "rules": [{
            "rule_id": r.rule.id, "kind": r.rule.kind, "version": r.rule.version,
            "fired": r.fired, "why": r.why,
            "expectations": [_expectation_json(x) for x in r.expectations],
            "trigger_misses": [_miss_json(m) for m in r.trigger_misses],
            "idle_triggers": [_miss_json(m) for m in r.idle_triggers],
        } for r in found.rules],
    }


def _expectation_json(x: ExpectationTrace) -> dict[str, Any]:
    e = x.expectation
    return {
        "alert_id": e.expectation_id, "status": e.status, "fired": x.fired, "why": x.why,
        "trigger": _ref_json(x.trigger) if x.trigger else {"event_id": e.trigger_event_id},
        "window_start": e.window_start.isoformat(),
        "due_at": e.due_at.isoformat() if e.has_deadline else None,
        "raised_at": e.raised_at.isoformat() if e.raised_at else None,
        "closed_at": e.closed_at.isoformat() if e.closed_at else None,
        "fulfilled_by": e.fulfilled_by, "resolution": e.resolution,
        "near_misses": [_miss_json(m) for m in x.near_misses],
    }


def _miss_json(m: Miss) -> dict[str, Any]:
    return {"event": _ref_json(m.event), "reason": m.reason}


def _ref_json(ref: EventRef) -> dict[str, Any]:
    return {"agency": ref.agency, "event_id": ref.event_id, "event_type": ref.event_type,
            "service_kind": ref.service_kind, "occurred_at": ref.occurred_at.isoformat(),
            "recorded_at": ref.recorded_at.isoformat()}
