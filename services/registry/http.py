"""The schemas over HTTP, read-only, the way standard Kafka tools fetch them: the subset of
the Confluent Schema Registry REST API that deserializers and browsers of topics use, under
``/schema-registry`` on the gateway (point a tool's ``schema.registry.url`` there), and the
AsyncAPI document of the topics at ``/asyncapi.yaml``.

No authentication: schemas and the topic list are the published contract, not records. No
writes: the table is computed from the code (``services/common/schema_registry.py``), so
there is nothing to register; ``POST`` and ``DELETE`` answer 405.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.common import asyncapi
from services.common import schema_registry as table
from services.common.serde.avro import SchemaVersion, agency_codec, confluent_schema_id
from services.common.settings import AGENCY_ID, Topics

MEDIA_TYPE = table.MEDIA_TYPE
TAG = "schema-registry"
#: for the gateway's OpenAPI ``tags``
TAGS: list[dict[str, Any]] = [
    {"name": TAG, "description": "The Avro schemas of the Kafka topics, read-only, as the "
     "Confluent Schema Registry REST API serves them: point a Kafka tool's schema registry URL "
     "at `/schema-registry` to decode messages in the Confluent wire format. See "
     "docs/publishing-to-kafka.md."},
    {"name": "asyncapi", "description": "The AsyncAPI 3.0 document of the Kafka topics."},
]

_EXAMPLE_SCHEMA = '{"type":"record","name":"AgencyEvent","namespace":"joinedup","fields":[...]}'


class SchemaString(BaseModel):
    schema_: str = Field(alias="schema", description="the Avro schema, as JSON text")


class SubjectVersion(BaseModel):
    subject: str
    version: int


class RegisteredSchema(BaseModel):
    subject: str
    id: int = Field(description="the schema id a Confluent-framed message carries")
    version: int
    schema_: str = Field(alias="schema", description="the Avro schema, as JSON text")


class RegistryErrorBody(BaseModel):
    error_code: int = Field(description="40401 subject, 40402 version, 40403 schema not found; "
                            "42202 invalid version")
    message: str


def _answer(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _error(status: int, code: int, message: str) -> Response:
    return _answer({"error_code": code, "message": message}, status)


def _raw(version: SchemaVersion) -> Response:
    return Response(version.text, media_type=MEDIA_TYPE)


def _content(example: Any) -> dict[str, Any]:
    return {MEDIA_TYPE: {"example": example}}


def _not_found(code: int, what: str) -> dict[str, Any]:
    return {"model": RegistryErrorBody, "description": f"{what} not found",
            "content": _content({"error_code": code, "message": f"{what} not found"})}


#: A malformed path parameter (FastAPI refuses it before the route: the gateway answers it in
#: the registry's error shape, naming the parameter, never its value).
_MALFORMED: dict[str, Any] = {
    "model": RegistryErrorBody, "description": "a path parameter is malformed",
    "content": _content({"error_code": 422, "message": "invalid path.schema_id"})}


@cache
def _document(prefix: str) -> str:
    return asyncapi.render(Topics(prefix))


def schema_registry_router(topics: Topics) -> APIRouter:
    router = APIRouter(prefix="/schema-registry", tags=[TAG])
    example_id = confluent_schema_id(agency_codec().current.fingerprint)
    example_subject = table.value_subject(topics.person_events)
    # Described, not enforced: an unknown id or subject is the registry's 404 with its error
    # code, which tools expect, rather than a validation error.
    known_ids = sorted({confluent_schema_id(v.fingerprint)
                        for s in table.subjects(topics) for v in s.versions})
    subjects = "|".join(re.escape(s.name) for s in table.subjects(topics))
    agency_topic = re.escape(f"{topics.prefix}.agency-events.")
    schema_id_param = Path(description="a schema id, as a message carries it",
                           examples=[example_id], json_schema_extra={"enum": known_ids})
    subject_param = Path(
        description="`<topic>-value`, or `<prefix>.person-events-joinedup.IdentityEvent`",
        examples=[example_subject], json_schema_extra={
            "pattern": f"^(?:{subjects}|{agency_topic}{AGENCY_ID.pattern[1:-1]}-value)$"})
    version_param = Path(description="a version number, or `latest`", examples=["latest"],
                         json_schema_extra={"pattern": "^(?:latest|-1|[1-9][0-9]{0,9})$"})

    @router.get("/schemas/ids/{schema_id}", operation_id="getSchemaById",
                response_model=SchemaString, responses={
                    200: {"content": _content({"schema": _EXAMPLE_SCHEMA})},
                    404: _not_found(40403, "schema"), 422: _MALFORMED})
    async def schema_by_id(schema_id: int = schema_id_param) -> Response:
        """The schema a message's id names (what a deserializer fetches)."""
        found = table.schema_by_id(schema_id)
        if found is None:
            return _error(404, 40403, f"Schema {schema_id} not found")
        return _answer({"schema": found.text})

    @router.get("/schemas/ids/{schema_id}/schema", operation_id="getRawSchemaById",
                response_model=dict[str, Any], responses={
                    200: {"content": _content(json.loads(_EXAMPLE_SCHEMA.replace("...", "")))},
                    404: _not_found(40403, "schema"), 422: _MALFORMED})
    async def raw_schema_by_id(schema_id: int = schema_id_param) -> Response:
        """The schema itself (not wrapped in a JSON string)."""
        found = table.schema_by_id(schema_id)
        return _error(404, 40403, f"Schema {schema_id} not found") if found is None else _raw(found)

    @router.get("/schemas/ids/{schema_id}/versions", operation_id="listSchemaSubjectVersions",
                response_model=list[SubjectVersion], responses={
                    200: {"content": _content([{"subject": example_subject, "version": 3}])},
                    404: _not_found(40403, "schema"), 422: _MALFORMED})
    async def versions_of_schema(schema_id: int = schema_id_param) -> Response:
        """Every subject and version the schema is registered under (agency topics'
        subjects aside: every agency topic has the agency event's)."""
        if table.schema_by_id(schema_id) is None:
            return _error(404, 40403, f"Schema {schema_id} not found")
        return _answer([{"subject": s, "version": v}
                        for s, v in table.subject_versions_of(topics, schema_id)])

    @router.get("/subjects", operation_id="listSubjects", response_model=list[str],
                responses={200: {"content": _content([example_subject])}})
    async def list_subjects() -> Response:
        """The subjects of joinedup's own topics. Each agency topic's subject,
        ``<prefix>.agency-events.<agency>-value``, answers too without being listed."""
        return _answer([s.name for s in table.subjects(topics)])

    @router.get("/subjects/{subject}/versions", operation_id="listSubjectVersions",
                response_model=list[int], responses={
                    200: {"content": _content([1, 2, 3])},
                    404: _not_found(40401, "subject"), 422: _MALFORMED})
    async def list_versions(subject: str = subject_param) -> Response:
        """The versions of a subject: its schema files' versions."""
        found = table.find_subject(topics, subject)
        if found is None:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        return _answer([v.version for v in found.versions])

    def _version(subject: str, version: str) -> tuple[table.Subject, SchemaVersion] | Response:
        found = table.find_subject(topics, subject)
        if found is None:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if version in ("latest", "-1"):
            return found, found.versions[-1]
        if not version.isdigit() or not 0 < int(version) < 2**31:
            return _error(422, 42202, "The specified version is not a valid version id. "
                          "Allowed values are between [1, 2^31-1] and the string \"latest\"")
        chosen = found.version(int(version))
        if chosen is None:
            return _error(404, 40402, f"Version {version} not found.")
        return found, chosen

    @router.get("/subjects/{subject}/versions/{version}", operation_id="getSubjectVersion",
                response_model=RegisteredSchema, responses={
                    200: {"content": _content({"subject": example_subject, "id": example_id,
                                               "version": 3, "schema": _EXAMPLE_SCHEMA})},
                    404: _not_found(40402, "version"),
                    422: {"model": RegistryErrorBody, "description": "not a version number",
                          "content": _content({"error_code": 42202,
                                               "message": "not a valid version id"})}})
    async def subject_version(subject: str = subject_param,
                              version: str = version_param) -> Response:
        """One version of a subject (``latest`` for the newest) with its schema id."""
        found = _version(subject, version)
        if isinstance(found, Response):
            return found
        named, chosen = found
        return _answer({"subject": named.name, "id": confluent_schema_id(chosen.fingerprint),
                        "version": chosen.version, "schema": chosen.text})

    @router.get("/subjects/{subject}/versions/{version}/schema",
                operation_id="getSubjectVersionSchema", response_model=dict[str, Any],
                responses={200: {"content": _content(
                               json.loads(_EXAMPLE_SCHEMA.replace("...", "")))},
                           404: _not_found(40402, "version"), 422: _MALFORMED})
    async def subject_version_schema(subject: str = subject_param,
                                     version: str = version_param) -> Response:
        """The schema of one version of a subject, itself."""
        found = _version(subject, version)
        return found if isinstance(found, Response) else _raw(found[1])

    return router


def asyncapi_router(topics: Topics) -> APIRouter:
    router = APIRouter(tags=["asyncapi"])

    @router.get("/asyncapi.yaml", operation_id="getAsyncApiDocument", response_class=Response,
                responses={200: {"description": "AsyncAPI 3.0, YAML", "content": {
                    asyncapi.MEDIA_TYPE: {"schema": {"type": "object"},
                                          "example": "asyncapi: 3.0.0\ninfo: ..."}}}})
    async def document() -> Response:
        """The AsyncAPI document of the Kafka topics (docs/asyncapi.yaml for this deployment's
        topic prefix)."""
        return Response(_document(topics.prefix), media_type=asyncapi.MEDIA_TYPE)

    return router


def registry_routers(topics: Topics) -> APIRouter:
    """Both, for the gateway to include in one line."""
    router = APIRouter()
    router.include_router(schema_registry_router(topics))
    router.include_router(asyncapi_router(topics))
    return router
