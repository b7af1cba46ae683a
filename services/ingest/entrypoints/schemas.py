"""Response bodies and the OpenAPI description of the request bodies.

Request bodies are read by hand (size limit, two media types, per-item checks in a batch), so
the OpenAPI document describes them here, from the same pydantic models that check them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from services.common.serde.agency_json import CloudEventBody, EventBody
from services.ingest.domain.outcomes import Outcome
from services.ingest.domain.parsing import EXTENSION_NAME
from services.ingest.entrypoints.body import CLOUDEVENT, CLOUDEVENT_BATCH, JSON

PROBLEM_JSON = "application/problem+json"
_REF = "#/components/schemas/{model}"


class ProblemItem(BaseModel):
    field: str = Field(description="path of the offending field, e.g. identifiers[0].value")
    reason: str = Field(description="why it was refused (never repeats the value)")
    code: str = Field(description="stable reason code, e.g. invalid_identifier")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with the per-field problems."""

    type: str = Field(description="the problem type: a URI reference, relative to this "
                      "server, of a page explaining it (/problems/<slug>)",
                      examples=["/problems/unprocessable"])
    title: str
    status: int
    detail: str
    problems: list[ProblemItem] = Field(default_factory=list)


class EventAccepted(BaseModel):
    status: Literal["accepted", "already_accepted"]
    event_id: str
    partition: int
    offset: int


class ItemResult(BaseModel):
    index: int = Field(description="position of the event in the request")
    event_id: str | None
    status: Literal["accepted", "already_accepted", "conflict", "in_progress", "forbidden",
                    "refused", "not_written"]
    http_status: int = Field(description="what POST /v1/events would have answered for it")
    partition: int | None = None
    offset: int | None = None
    problems: list[ProblemItem] = Field(default_factory=list)


class BatchResult(BaseModel):
    all_written: bool = Field(description="false if any event is refused or not written")
    not_written: int = Field(description="events the broker did not acknowledge: retry them")
    counts: dict[str, int] = Field(description="how many items ended in each status")
    items: list[ItemResult]


def item_result(index: int, outcome: Outcome) -> ItemResult:
    return ItemResult(
        index=index, event_id=outcome.event_id, status=outcome.status,
        http_status=outcome.http_status, partition=outcome.partition, offset=outcome.offset,
        problems=[ProblemItem(field=p.field, reason=p.reason, code=p.code)
                  for p in outcome.problems])


def component_schemas() -> dict[str, Any]:
    """JSON schemas of every body, keyed by model name, referencing each other as components."""
    models: list[type[BaseModel]] = [EventBody, CloudEventBody, ProblemDetails, EventAccepted,
                                     BatchResult]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    found = dict(top["$defs"])
    # Extension attributes: any other member named by the CloudEvents naming rule (kept in
    # `extra` as ce_<name>; see services.ingest.domain.parsing).
    found["CloudEventBody"]["patternProperties"] = {EXTENSION_NAME.pattern: {
        "description": "an extension attribute (dataref, traceparent, filtering...): text "
                       "is kept as it is, any other JSON value as compact JSON"}}
    return found


def ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def single_request_body() -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref("EventBody")},
                                          CLOUDEVENT: {"schema": ref("CloudEventBody")}}}


def batch_request_body(max_events: int) -> dict[str, Any]:
    return {"required": True, "content": {
        JSON: {"schema": {"type": "object", "additionalProperties": False,
                          "required": ["events"], "properties": {"events": {
                              "type": "array", "maxItems": max_events,
                              "items": ref("EventBody")}}}},
        CLOUDEVENT_BATCH: {"schema": {"type": "array", "maxItems": max_events,
                                      "items": ref("CloudEventBody")}}}}


def problem(description: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {PROBLEM_JSON: {"schema": ref("ProblemDetails")}}}
    if headers:
        response["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                               for name, text in headers.items()}
    return response


UNAUTHENTICATED = problem("missing, unknown or revoked token",
                          {"WWW-Authenticate": "Bearer"})
UNAVAILABLE = {"Retry-After": "seconds to wait before retrying"}
