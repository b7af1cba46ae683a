"""A posted FHIR R4 Task -> a ``referral.*`` agency event, or the issues that stop it.

Pure: the caller passes the calling agency, the registered service kinds and the clock.
The Task's structure is checked by the ``fhir.resources`` R4B models (R4B's Task is R4's);
what joinedup needs of it on top (a status it maps, known identifier systems, agencies as
``Organization/<id>``, a ServiceRequest focus, lastModified) is checked here. Issues name
the element (a FHIRPath expression), never the value sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from services.common.events import (
    DECLINE_REASONS,
    SERVICE_KINDS,
    AgencyEvent,
    Identifier,
    Referral,
    Source,
)
from services.common.validation import event_problems
from services.ingest.formats.fhir import statuses
from services.ingest.formats.fhir import systems as uri

#: Namespace of the event ids derived from (agency, requester, Task id, lastModified).
EVENT_NAMESPACE: Final = uuid.UUID("5b0f0f4e-2f7c-4a53-9a55-7d1c0b6a1f18")
SYSTEM: Final = "FHIR"


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: ``code`` is the FHIR issue type."""

    expression: str
    diagnostics: str
    code: str = "invalid"
    basic: bool = False  # failed the FHIR model itself (HTTP 400), not joinedup's rules (422)


@dataclass(frozen=True, slots=True)
class PostedTask:
    task_id: str
    requester: str                      # agency ids
    owner: str
    status: str
    last_modified: datetime
    identifiers: tuple[Identifier, ...]  # personal data
    identifier_paths: tuple[str, ...]   # the element each identifier came from
    decline_reason: str | None
    cites_service_kind: str | None
    resource: dict[str, Any]            # the Task as posted, in FHIR JSON


def read_task(body: Any, task_id: str | None = None) -> PostedTask | list[Issue]:
    """Check a Task body; ``task_id`` is the id in the URL of a PUT (None for a POST,
    where a Task without an id gets a new one)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Task":
        return [Issue("Task.resourceType", "the body must be a FHIR Task resource",
                      "structure", True)]
    try:
        task = Task.model_validate(body)
    except ValidationError as exc:
        return structure_issues(exc)
    issues: list[Issue] = []
    if task_id is not None and task.id != task_id:
        issues.append(Issue("Task.id", "must be the id in the URL", "invalid"))
    status = task.status or ""
    if status not in statuses.ACTION_BY_STATUS:
        issues.append(Issue("Task.status", "is not a FHIR R4 Task status", "code-invalid"))
    elif statuses.referral_action(status) is None:
        issues.append(Issue("Task.status", "a draft Task is not a referral yet: post it "
                                           "when it is requested", "business-rule"))
    requester = _agency(task.requester, "Task.requester", issues)
    owner = _agency(task.owner, "Task.owner", issues)
    if task.lastModified is None:
        issues.append(Issue("Task.lastModified", "is required: it orders the Task's "
                                                 "versions and keys their idempotency",
                            "required"))
    _check_focus(task, issues)
    identifiers, paths = _patient_identifiers(task, issues)
    if issues:
        return issues
    assert requester and owner and task.lastModified is not None
    decline, cites = _status_reason(task)
    # The Task as posted (checked above), not the model's dump: what a search answers is
    # what was sent, and dumping costs as much as validating.
    resource = {**body, "id": task.id or str(uuid.uuid4())}
    return PostedTask(resource["id"], requester, owner, status,
                      task.lastModified.astimezone(UTC), tuple(identifiers), tuple(paths),
                      decline, cites, resource)


def referral_event(task: PostedTask, agency: str, kinds: Mapping[str, str], now: datetime,
                   future_tolerance: timedelta) -> AgencyEvent | list[Issue]:
    """The event the Task is, published by ``agency`` (``kinds``: registered service kind
    of each agency). Checked as every event is (identifier values, times)."""
    if task.owner not in kinds:
        return [Issue("Task.owner", "names no agency registered with joinedup", "value")]
    if agency not in (task.requester, task.owner):
        return [Issue("Task", "only the requester or the owner may write a Task",
                      "forbidden")]
    action = statuses.referral_action(task.status)
    event_id = uuid.uuid5(EVENT_NAMESPACE, "|".join(
        (agency, task.requester, task.task_id, task.last_modified.isoformat())))
    resource = dict(task.resource)
    resource["meta"] = {**resource.get("meta", {}), "versionId": str(event_id),
                        "lastUpdated": _instant(task.last_modified)}
    event = AgencyEvent(
        event_id=str(event_id), event_type=f"referral.{action}",
        occurred_at=task.last_modified, recorded_at=task.last_modified,
        source=Source(agency, kinds.get(agency, "OTHER"), SYSTEM),
        identifiers=task.identifiers,
        payload=Referral(
            referral_id=referral_id(task.requester, task.task_id), to_agency=task.owner,
            to_service_kind=kinds[task.owner],
            decline_reason=task.decline_reason if action == "declined" else None,
            cites_service_kind=task.cites_service_kind if action == "declined" else None,
            outcome=statuses.OUTCOME_BY_STATUS.get(task.status)),
        extra={uri.TASK_KEY: json.dumps(resource, sort_keys=True, separators=(",", ":"))})
    problems = event_problems(event, now, future_tolerance)
    return [Issue(_element(task, p.field), p.reason, "value") for p in problems] or event


def referral_id(requester: str, task_id: str) -> str:
    """Task ids are the requester's: the referral is named by both."""
    return f"{requester}/Task/{task_id}"


def structure_issues(error: ValidationError) -> list[Issue]:
    issues = []
    for item in error.errors(include_input=False, include_url=False):
        path = "Task"
        for part in item["loc"]:
            if part in ("root", "resource_type"):
                continue
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        kind = str(item["type"])
        if "missing" in kind:
            issues.append(Issue(path, "is required", "required", True))
        elif kind == "extra_forbidden":
            issues.append(Issue(path, "is not an element of this resource", "structure", True))
        elif "resource-type" in kind:
            issues.append(Issue(path + ".resourceType", "is not the resource type this "
                                                        "element holds", "structure", True))
        else:  # pydantic's message can quote the value: the kind of error only
            issues.append(Issue(path, f"is not a valid value for this element ({kind})",
                                "value", True))
    return issues


def _agency(reference: Reference | None, path: str, issues: list[Issue]) -> str | None:
    text = reference.reference if reference is not None else None
    if not text or not text.startswith(uri.ORGANIZATION) or "/" in text[len(uri.ORGANIZATION):]:
        issues.append(Issue(f"{path}.reference", "must be Organization/<agency id>",
                            "required" if not text else "value"))
        return None
    return text[len(uri.ORGANIZATION):]


def _contained(task: Task, reference: str | None) -> Any:
    if reference and reference.startswith("#"):
        for resource in task.contained or []:
            if resource.id == reference[1:]:
                return resource
    return None


def _check_focus(task: Task, issues: list[Issue]) -> None:
    reference = task.focus.reference if task.focus is not None else None
    if not reference:
        issues.append(Issue("Task.focus", "is required: the ServiceRequest this Task "
                                          "asks to be done", "required"))
    elif reference.startswith("#"):
        if not isinstance(_contained(task, reference), ServiceRequest):
            issues.append(Issue("Task.focus.reference", "names no contained ServiceRequest",
                                "value"))
    elif not reference.startswith("ServiceRequest/"):
        issues.append(Issue("Task.focus.reference", "must be a ServiceRequest", "value"))


def _patient_identifiers(task: Task, issues: list[Issue]
                         ) -> tuple[list[Identifier], list[str]]:
    """``Task.for.identifier`` and the identifiers of a contained Patient it references."""
    found: list[tuple[Any, str]] = []
    subject = task.for_fhir
    if subject is not None and subject.identifier is not None:
        found.append((subject.identifier, "Task.for.identifier"))
    patient = _contained(task, subject.reference if subject is not None else None)
    if isinstance(patient, Patient):
        index = next(i for i, r in enumerate(task.contained or []) if r is patient)
        found += [(item, f"Task.contained[{index}].identifier[{n}]")
                  for n, item in enumerate(patient.identifier or [])]
    elif subject is not None and subject.reference:
        issues.append(Issue("Task.for.reference", "must name a contained Patient (#id); "
                                                  "or give Task.for.identifier", "value"))
    identifiers, paths = [], []
    for item, path in found:
        scheme = uri.SCHEME_BY_SYSTEM.get(item.system or "")
        if scheme is None:
            issues.append(Issue(f"{path}.system", "is not an identifier system joinedup "
                                                  "knows (docs/formats-fhir.md)", "code-invalid"))
        elif not item.value:
            issues.append(Issue(f"{path}.value", "is required", "required"))
        elif Identifier(scheme, item.value) not in identifiers:
            identifiers.append(Identifier(scheme, item.value))
            paths.append(path)
    if not found and not any(i.expression.startswith("Task.for") for i in issues):
        issues.append(Issue("Task.for", "is required: the person, by identifier",
                            "required"))
    return identifiers, paths


def _status_reason(task: Task) -> tuple[str | None, str | None]:
    """(decline reason, the other need it cites) from statusReason's joinedup codings."""
    codings = (task.statusReason.coding or []) if task.statusReason is not None else []
    decline = next((c.code for c in codings if c.system == uri.DECLINE_REASON_SYSTEM
                    and c.code in DECLINE_REASONS), None)
    cites = next((c.code for c in codings if c.system == uri.SERVICE_KIND_SYSTEM
                  and c.code in SERVICE_KINDS), None)
    return decline or "OTHER", cites


def _element(task: PostedTask, field: str) -> str:
    """The Task element an event problem is about."""
    if field.startswith("identifiers["):
        index, _, rest = field[len("identifiers["):].partition("]")
        path = task.identifier_paths[int(index)]
        return path + (".system" if rest == ".scheme" else rest)
    if field in ("occurred_at", "recorded_at"):
        return "Task.lastModified"
    return "Task"


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
