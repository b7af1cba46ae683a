"""Request examples of the read API's operations (and the operations staff's routes it
serves), by operation id and media type: requests the API accepts, shown in its OpenAPI
document and sent by its fuzz tests."""

from __future__ import annotations

from typing import Any, Final

JSON: Final = "application/json"

# The first rule of the starting pack (services/processor/rules/pack.toml), with a 48-hour
# window instead of 72: what an operator would try before changing the pack.
_RULES: Final = '''version = "2026.12.1-what-if"
description = "72-hour follow-up, tried at 48 hours"
resolve_late_within = "365d"
late_arrival_grace = "30d"

[[rules]]
id = "mh-72h-follow-up"
category = "MENTAL_HEALTH"
kind = "deadline"
title = "No follow-up within 48 hours of a mental-health inpatient discharge"
severity = "critical"
route = "mental-health:{area}"
expected = "a follow-up or attended contact from a mental health service"
explanation = "Suicide risk peaks on days 2-3 after discharge from a mental-health ward."
source = "NHS Standard Contract: 72-hour follow-up after discharge"

[rules.trigger]
event_type = "transition.occurred"
where = { "payload.kind" = "MENTAL_HEALTH_DISCHARGE" }

[rules.expect]
event_type = ["contact.follow_up", "contact.attended"]
where = { "source.service_kind" = "MENTAL_HEALTH" }

[rules.window]
within = "48h"

[rules.cancel]
event_type = "transition.cancelled"
same = ["payload.transition_id"]
'''

REQUEST_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "signIn": {JSON: {"username": "housing.officer", "password": "correct horse battery"}},
    "findPerson": {JSON: {"scheme": "nhs_number", "value": "9434765919"}},
    "recordConsent": {JSON: {"agencies": ["leeds-housing", "probation-yh"],
                             "categories": ["GENERAL", "CRIMINAL_JUSTICE"],
                             "expires": "2027-03-02T09:00:00Z", "kind": "explicit"}},
    "openEpisode": {JSON: {"coordinator": "housing.officer"}},
    "grantAccess": {JSON: {"team_id": "leeds-housing/options"}},
    "discloseEntry": {JSON: {"entry_event_id": "7f1d2c9e-3b4a-4e5f-8a6b-1c2d3e4f5a6b",
                             "to_agency": "probation-yh", "legal_basis": "safeguarding",
                             "reason": "risk of harm on release: probation must plan"}},
    "redriveDeadLetter": {JSON: {"reason": "the agency fixed its identifiers mapping"}},
    "purgeDeadLetter": {JSON: {"reason": "test event sent to production by mistake"}},
    "ruleWhatIf": {JSON: {"rules": _RULES, "rule": "mh-72h-follow-up",
                          "since": "2026-11-01T00:00:00Z"}},
}
