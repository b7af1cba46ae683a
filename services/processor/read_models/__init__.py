"""The processor's read models, one registry entry each (see ``registry.py``).

Adding a read model is adding an entry to ``read_models`` (and its tables in a migration);
the pipeline applies whatever the registry holds, in this order.
"""

from __future__ import annotations

from typing import Any

from services.ingest.formats.fhir.read_model import fhir_tasks
from services.processor.read_models.caseload import caseload
from services.processor.read_models.identifiers import identifiers
from services.processor.read_models.referrals import referrals
from services.processor.read_models.registry import Fold, ReadModel, Registry, Store
from services.processor.read_models.rules import rules
from services.processor.read_models.timeline import timeline
from services.processor.rules_stage import RuleStage

__all__ = ["Fold", "ReadModel", "Registry", "Store", "read_models"]


def read_models(stage: RuleStage | None = None) -> Registry:
    """Every read model; the rules (rule state, expectations and the alerts they raise)
    when a rule stage is given."""
    entries: list[ReadModel[Any, Any, Any]] = [timeline(), identifiers(), referrals(),
                                               caseload(), fhir_tasks()]
    if stage is not None:
        entries.append(rules(stage))
    return Registry(entries)
