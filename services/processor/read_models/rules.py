"""Rule state and expectations, keyed by person: the rule pack folded over their events.

The fold is the engine's own step, with the event's recorded-at as ``now`` (the engine takes
the later of that and the event's), so a person's rule state depends only on their own
events in log order (and on the backfill records, which say which events are an onboarding
agency's history: ``RuleStage.history_of``, loaded with the batch). Its change is the
engine's ``Outcome`` (expectations, markers, alert events), written by the store
(``RuleStage``) with the alert events put in the outbox.
"""

from __future__ import annotations

from collections.abc import Callable

from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent
from services.processor.domain.rules import Outcome, PersonRuleState, RulePack, apply_event
from services.processor.read_models.caseload import person_of
from services.processor.read_models.registry import Fold, ReadModel
from services.processor.rules_stage import RULES, RuleStage


def apply_rules(pack: RulePack, history_of: Callable[[AgencyEvent], str | None] = lambda _: None
                ) -> Fold[PersonRuleState, Outcome]:
    def fold(state: PersonRuleState | None, event: AgencyEvent
             ) -> tuple[PersonRuleState, list[Outcome]]:
        outcome = apply_event(pack, state or PersonRuleState(event.person_key), event,
                              event.recorded_at, history_of(event))
        return outcome.state, [outcome]
    return fold


def rules(stage: RuleStage) -> ReadModel[str, PersonRuleState, Outcome]:
    return ReadModel(RULES, dict.fromkeys(PAYLOAD_BY_FAMILY, apply_rules(stage.pack, stage.history_of)),
                     person_of, stage, TABLES)


#: the rule state, and the alerts it raises with their outbox (written in its transaction)
TABLES = ("expectation", "rule_marker", "person_rule_state", "alert", "alert_history",
          "alert_outbox", "historical_alert")
