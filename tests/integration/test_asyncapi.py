"""The AsyncAPI document: the checked-in docs/asyncapi.yaml is what `joinedup asyncapi`
generates (so it cannot drift from the code), it is well formed (no maintained Python package
ships the AsyncAPI JSON schema, so its structure is checked here: every reference resolves,
every operation's messages belong to its channel, every payload is an Avro schema fastavro
parses and is the newest schema file), and the gateway serves it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastavro
import httpx
import yaml

from services.common import asyncapi
from services.common.serde import headers
from services.common.serde.confluent import codecs
from services.common.settings import Settings, Topics
from services.ingest.entrypoints.http import create_app
from services.ingest.formats.hmpps.intake import TOPIC_WORD as HMPPS_TOPIC_WORD
from services.operations.cli import main

CHECKED_IN = Path(__file__).parents[2] / "docs" / "asyncapi.yaml"
DEFAULT = Topics(str(Settings.model_fields["topic_prefix"].default))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for k, v in node.items() if k != "schema" for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_checked_in_document_is_what_the_command_generates(tmp_path: Path) -> None:
    written = tmp_path / "asyncapi.yaml"
    assert main(["asyncapi", "--prefix", DEFAULT.prefix, "--output", str(written)]) == 0
    assert written.read_text() == CHECKED_IN.read_text(), (
        "docs/asyncapi.yaml is stale: run `joinedup asyncapi --prefix joinedup "
        "--output docs/asyncapi.yaml`")


def test_the_document_is_well_formed_asyncapi_3() -> None:
    document = yaml.safe_load(CHECKED_IN.read_text())
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    for ref in _refs(document):
        assert _resolve(document, ref) is not None, ref
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel = _resolve(document, operation["channel"]["$ref"])
        for message in operation["messages"]:
            assert message["$ref"].startswith(operation["channel"]["$ref"] + "/messages/"), name
            assert message["$ref"].rsplit("/", 1)[1] in channel["messages"]
    for server in document["servers"].values():
        assert server["protocol"] == "kafka"


def test_the_channels_are_the_codes_topics() -> None:
    document = yaml.safe_load(CHECKED_IN.read_text())
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {DEFAULT.person_events, DEFAULT.alerts, DEFAULT.governance,
                         DEFAULT.agency("agency").removesuffix("agency") + "{agency}",
                         f"{DEFAULT.prefix}.{HMPPS_TOPIC_WORD}.{{agency}}"}
    for name in ("agencyEvents", "hmppsDomainEvents"):
        assert set(document["channels"][name]["parameters"]) == {"agency"}


def test_every_payload_is_the_newest_avro_schema_of_its_family() -> None:
    document = yaml.safe_load(CHECKED_IN.read_text())
    schemas = document["components"]["schemas"]
    newest = {c.current.schema["name"]: json.loads(c.current.text) for c in codecs()}
    for name, message in document["components"]["messages"].items():
        if name == "hmppsDomainEvent":  # JSON as HMPPS publishes it, not one of our schemas
            assert message["contentType"] == "application/json"
            continue
        payload = _resolve(document, message["payload"]["$ref"])
        assert payload["schemaFormat"] == "application/vnd.apache.avro+json;version=1.9.0"
        fastavro.parse_schema(payload["schema"])
        full_name = f"{payload['schema']['namespace']}.{payload['schema']['name']}"
        assert payload["schema"] == newest[full_name]
        binding = message["bindings"]["kafka"]
        assert binding["schemaIdLocation"] == "payload" and binding["key"]["description"]
    assert len(schemas) == len(newest)


def test_every_header_the_code_writes_is_described() -> None:
    written = set(headers.CARRIED) | {headers.CONTENT_TYPE, headers.EVENT_TYPE}
    assert written <= set(asyncapi.HEADER_DESCRIPTIONS)
    document = yaml.safe_load(CHECKED_IN.read_text())
    agency_headers = document["components"]["messages"]["agencyEvent"]["headers"]["properties"]
    assert set(agency_headers) == set(headers.CARRIED)


async def test_the_gateway_serves_the_document_for_its_topic_prefix(settings: Settings) -> None:
    transport = httpx.ASGITransport(app=create_app(settings, migrate=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/asyncapi.yaml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/yaml")
    assert answer.text == asyncapi.render(settings.topics)
    assert yaml.safe_load(answer.text)["channels"]["alerts"]["address"] == settings.topics.alerts
