"""The transition-gap rules engine: rules as data, expectations with deadlines, alerts as events.

Pure code: the clock (`now`) and every id come in as arguments or are derived from event ids,
so a replay of the same log raises the same alerts with the same ids and times.
"""

from services.processor.domain.rules.engine import (
    Expectation,
    Marker,
    Outcome,
    PersonRuleState,
    apply_event,
    fire_due,
)
from services.processor.domain.rules.explain import explain
from services.processor.domain.rules.loader import RuleFileError, default_pack_path, load_rule_pack
from services.processor.domain.rules.model import Rule, RulePack

__all__ = [
    "Expectation", "Marker", "Outcome", "PersonRuleState", "Rule", "RuleFileError", "RulePack",
    "apply_event", "default_pack_path", "explain", "fire_due", "load_rule_pack",
]
