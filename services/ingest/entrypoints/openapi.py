"""What every joinedup HTTP app does to its OpenAPI document and its docs page.

* The docs pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) load their scripts and styles
  from the app itself (``fastapi-offline`` ships them), never from a CDN: the services run
  where outbound traffic is restricted, and a page must not tell a third party who reads it.
* Examples: a request body's example is written by hand (``request_examples``, by operation
  id and media type, or the model's own ``examples``) because it has to be a request the
  service accepts (the fuzz tests send them); a 2xx response
  without one gets one derived from its schema (the values are placeholders of the right
  shape); every problem response gets a problem-details example with its ``type``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.ingest.entrypoints.problem_types import problem_type

PROBLEM_JSON = "application/problem+json"
DOCS_ASSETS = "/docs-assets"
_MAX_DEPTH = 6
_STRING_FORMATS = {"date-time": "2026-03-02T09:00:00Z", "date": "2026-03-02",
                   "uuid": "7f1d2c9e-3b4a-4e5f-8a6b-1c2d3e4f5a6b", "uri": "https://example.org/",
                   "email": "someone@example.org", "duration": "PT1H", "time": "09:00:00"}

#: operation id -> media type -> an example body
RequestExamples = Mapping[str, Mapping[str, Any]]


def documented_app(**settings: Any) -> FastAPI:
    """A FastAPI app whose ``/docs`` and ``/redoc`` pages need no CDN."""
    return FastAPIOffline(static_url=DOCS_ASSETS, **settings)


def polish(document: dict[str, Any], request_examples: RequestExamples) -> dict[str, Any]:
    """Examples in place, as the module docstring says; returns the document."""
    schemas = document.get("components", {}).get("schemas", {})
    for operation in _operations(document):
        mine = request_examples.get(operation.get("operationId", ""), {})
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            if media in mine and not _has_example(content):
                content["example"] = mine[media]
            elif not _has_example(content) and (declared := _declared(
                    content.get("schema", {}), schemas)) is not None:
                content["example"] = declared  # the model's own, written with it
        for status, response in operation.get("responses", {}).items():
            if status[:1] in ("4", "5") and not response.get("content"):
                # Declared by its description alone: these apps answer it as a problem.
                response["content"] = {PROBLEM_JSON: {"schema": {
                    "$ref": "#/components/schemas/ProblemDetails"}}}
            for media, content in response.get("content", {}).items():
                if media == PROBLEM_JSON and status.isdigit():
                    content.setdefault("example", problem_example(int(status)))
                elif status.startswith("2") and not _has_example(content):
                    _add_example(media, content, schemas)
    return document


def _add_example(media: str, content: dict[str, Any], schemas: Mapping[str, Any]) -> None:
    if "json" in media:
        content["example"] = sample(content.get("schema", {}), schemas)
    elif media == "text/event-stream" and "schema" in content:  # one event, its data JSON
        data = sample(content["schema"], schemas)
        name = data.get("action", "message") if isinstance(data, dict) else "message"
        content["example"] = f"event: {name}\ndata: {json.dumps(data)}\n\n"


def problem_example(status: int) -> dict[str, Any]:
    kind = problem_type(status)
    return {"type": kind.uri, "title": kind.title, "status": status,
            "detail": "problems[].field: problems[].reason", "problems": [
                {"field": "identifiers[0].value", "reason": "fails the NHS number check digit",
                 "code": "invalid_identifier"}] if status == 422 else []}


def sample(schema: Mapping[str, Any], schemas: Mapping[str, Any], name: str = "value",
           depth: int = 0) -> Any:
    """A value of the schema's shape: its own example, default or first enum value when it
    has one, otherwise a placeholder of the right type and format."""
    if "$ref" in schema:
        return sample(schemas.get(schema["$ref"].rsplit("/", 1)[-1], {}), schemas, name, depth)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    for key in ("example", "const", "default"):
        if schema.get(key) is not None:
            return schema[key]
    branches = [b for b in (schema.get("anyOf") or schema.get("oneOf") or [])
                if b.get("type") != "null"]
    if branches:
        return sample(branches[0], schemas, name, depth)
    if schema.get("allOf"):
        return sample(schema["allOf"][0], schemas, name, depth)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if depth > _MAX_DEPTH:
        return None
    if kind == "object":
        if "properties" in schema:
            return {key: sample(value, schemas, key, depth + 1)
                    for key, value in schema["properties"].items()}
        extra = schema.get("additionalProperties")
        return {"key": sample(extra, schemas, "key", depth + 1)} if isinstance(extra, dict) \
            else {}
    if kind == "array":
        return [sample(schema.get("items", {}), schemas, name, depth + 1)]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1) if "maximum" not in schema else int(
            schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _STRING_FORMATS.get(schema.get("format", ""), name.replace("_", "-"))


def _declared(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Any:
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema["examples"][0] if schema.get("examples") else None


def _has_example(content: Mapping[str, Any]) -> bool:
    return "example" in content or "examples" in content


def _operations(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [operation for item in document.get("paths", {}).values()
            for method, operation in item.items()
            if method in ("get", "put", "post", "delete", "patch")]
