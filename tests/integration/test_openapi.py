"""Every operation of every HTTP app (ingest gateway, read API with the operations routes,
duty service) is documented for a client: a readable unique operation id, tags with
descriptions, examples of its request bodies (accepted by their schemas) and 2xx responses,
and RFC 9457 problem responses whose ``type`` is a page the app serves. The docs pages load
nothing from another host.

The apps are built without starting them (no lifespan): the document, the problem pages and
the docs assets need no database or broker."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from services.alerts.entrypoints.http import create_app as duty_app
from services.common.settings import Settings
from services.ingest.entrypoints.http import create_app as gateway_app
from services.ingest.entrypoints.problem_types import all_types
from services.reads.entrypoints.http import create_app as read_app

APPS: dict[str, Callable[..., FastAPI]] = {
    "gateway": gateway_app, "reads": read_app, "duty": duty_app}
OPERATION_ID = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$|^[a-z]+$")
METHODS = ("get", "put", "post", "delete", "patch")
# Readiness answers its own status document on 503 (what is down), not a refusal.
NOT_PROBLEMS = {("checkReadiness", "503")}
# Protocols whose clients expect their own error body: FHIR's OperationOutcome, the
# Confluent Schema Registry's {error_code, message}. Their errors must declare that instead.
PROTOCOL_ERRORS = {"/fhir/": "application/fhir+json",
                   "/schema-registry/": "application/vnd.schemaregistry.v1+json"}
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//""",
                      re.IGNORECASE)


@pytest.fixture(scope="module", params=list(APPS))
def app(request: pytest.FixtureRequest) -> FastAPI:
    made: FastAPI = APPS[request.param](Settings(environment="test"))
    return made


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def schema_of(content: dict[str, Any], document: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**content.get("schema", {}),
                                 "components": document.get("components", {})})


def examples_of(content: dict[str, Any]) -> list[Any]:
    if "example" in content:
        return [content["example"]]
    return [e.get("value") for e in content.get("examples", {}).values()]


def test_every_operation_is_documented_for_a_client(app: FastAPI) -> None:
    document = app.openapi()
    described = {t["name"] for t in document.get("tags", []) if t.get("description")}
    faults: list[str] = []
    seen: set[str] = set()
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        operation_id = operation.get("operationId", "")
        if not OPERATION_ID.match(operation_id) or operation_id in seen:
            faults.append(f"{where}: operation id {operation_id!r} is not unique camelCase")
        seen.add(operation_id)
        if not operation.get("tags") or not set(operation["tags"]) <= described:
            faults.append(f"{where}: tags {operation.get('tags')} without a description")
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            found = examples_of(content)
            if not found:
                faults.append(f"{where}: no example for the {media} request body")
            for example in found:
                errors = [e.message[:80] for e in schema_of(content, document)
                          .iter_errors(example)]
                if errors and "json" in media:
                    faults.append(f"{where}: the {media} example breaks its schema: {errors}")
        for status, response in operation.get("responses", {}).items():
            contents = response.get("content", {})
            if status.startswith("2"):
                faults += [f"{where}: no example for the {status} {media} response"
                           for media, content in contents.items() if not examples_of(content)]
            elif status[0] in "45" and (protocol := next((media for prefix, media in
                                                          PROTOCOL_ERRORS.items()
                                                          if path.startswith(prefix)), None)):
                if protocol not in contents:
                    faults.append(f"{where}: {status} is not declared as {protocol}")
            elif status[0] in "45" and (operation_id, status) not in NOT_PROBLEMS:
                problem = contents.get("application/problem+json")
                types = [e.get("type") for e in examples_of(problem or {})
                         if isinstance(e, dict)]
                if not types or not all(str(t).startswith("/problems/") for t in types):
                    faults.append(f"{where}: {status} is not a problem with a type")
    assert faults == [], "\n".join(faults)


async def test_problem_types_are_pages_the_app_serves(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        for kind in all_types():
            page = await client.get(kind.uri)
            assert page.status_code == 200 and kind.title in page.text
            assert page.headers["content-type"].startswith("text/html")
        missing = await client.get("/problems/no-such-problem")
        assert missing.status_code == 404
        assert missing.json()["type"] == "/problems/not-found"


async def test_docs_pages_load_nothing_from_another_host(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        for page in ("/docs", "/redoc"):
            answer = await client.get(page)
            assert answer.status_code == 200
            assert EXTERNAL.search(answer.text) is None, page
            assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", answer.text)
            assert assets, page
            for asset in assets:  # scripts, styles and the icon all come from the app
                assert (await client.get(asset)).status_code == 200, asset
            spec = re.findall(r"""url:\s*['"]([^'"]+)['"]|spec-url=["']([^"']+)["']""",
                              answer.text)
            assert spec and all((a or b).startswith("/") for a, b in spec), page
