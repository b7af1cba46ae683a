"""Request and response examples for the OpenAPI document (synthetic: the NHS number is a
test number)."""

from __future__ import annotations

from typing import Any, Final

TASK_EXAMPLE: Final[dict[str, Any]] = {
    "resourceType": "Task",
    "id": "housing-ref-0001",
    "contained": [{
        "resourceType": "ServiceRequest", "id": "req", "status": "active", "intent": "order",
        "code": {"text": "Housing options assessment on release"},
        "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                   "value": "9434765919"}}}],
    "status": "requested",
    "intent": "order",
    "focus": {"reference": "#req"},
    "for": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                           "value": "9434765919"}},
    "authoredOn": "2026-03-02T09:00:00Z",
    "lastModified": "2026-03-02T09:00:00Z",
    "requester": {"reference": "Organization/hmp-leeds"},
    "owner": {"reference": "Organization/leeds-housing"},
}

OUTCOME_EXAMPLE: Final[dict[str, Any]] = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "value",
               "diagnostics": "is not a valid NHS number (check digit)",
               "expression": ["Task.for.identifier.value"]}],
}

BUNDLE_EXAMPLE: Final[dict[str, Any]] = {
    "resourceType": "Bundle", "type": "searchset", "total": 1,
    "link": [{"relation": "self", "url": "https://gateway.example/fhir/Task?owner="
                                         "Organization/leeds-housing&_count=50"}],
    "entry": [{"fullUrl": "https://gateway.example/fhir/Task/housing-ref-0001",
               "resource": TASK_EXAMPLE, "search": {"mode": "match"}}],
}
