"""The FHIR resources the gateway answers with: OperationOutcome and searchset Bundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from services.ingest.formats.fhir.task import Issue

FHIR_JSON: Final = "application/fhir+json"


def operation_outcome(issues: Sequence[Issue], severity: str = "error") -> dict[str, Any]:
    """Issues name the element (``expression``) and the reason, never the value sent."""
    return {"resourceType": "OperationOutcome", "issue": [
        {"severity": severity, "code": i.code, "diagnostics": i.diagnostics,
         "expression": [i.expression]} for i in issues]}


def searchset(tasks: Sequence[dict[str, Any]], total: int, base: str, self_link: str,
              next_link: str | None) -> dict[str, Any]:
    """A searchset Bundle of Tasks; ``next_link`` when there is another page."""
    links = [{"relation": "self", "url": self_link}]
    if next_link is not None:
        links.append({"relation": "next", "url": next_link})
    return {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
            "entry": [{"fullUrl": f"{base}/fhir/Task/{t['id']}", "resource": t,
                       "search": {"mode": "match"}} for t in tasks]}
