"""The AsyncAPI 3.0 document of joinedup's Kafka topics, generated from the code's topic list
(``settings.Topics``), the schema files and the header names (``serde/headers.py``).

``joinedup asyncapi`` prints it; ``docs/asyncapi.yaml`` is its output for the default topic
prefix (a test keeps the two equal); the gateway serves it at ``/asyncapi.yaml``.

Each channel is a topic; each message names its Avro schema (the newest version, inline, as
a multi-format schema object), its key and its headers. The Kafka bindings say where a
registry finds the schema id (in the payload, Confluent framing) and which subject
(``services/common/schema_registry.py``).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from services.common import schema_registry as registry
from services.common.serde import headers as h
from services.common.serde.avro import AvroCodec, agency_codec, confluent_schema_id
from services.common.serde.confluent import codecs
from services.common.settings import Topics

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro+json;version=1.9.0"
KAFKA_BINDING = "0.5.0"
MEDIA_TYPE = "application/yaml"

#: What each header holds; a header the code writes and this table misses is described
#: generically, and a test fails until it is added here.
HEADER_DESCRIPTIONS: dict[str, str] = {
    "content-type": "The writer schema: `application/avro; schema=<record>; version=<n>; "
                    "fingerprint=<CRC-64-AVRO, hex>`.",
    "ce_specversion": "CloudEvents spec version (`1.0`), Kafka protocol binding, binary mode.",
    "ce_id": "The event id chosen by the publishing agency (unique within that agency).",
    "ce_source": "`/agencies/<agency id>`: the agency that published it.",
    "ce_type": "The event type, `<family>.<action>` (`transition.released`...).",
    "ce_time": "When it occurred (RFC 3339, UTC).",
    "traceparent": "W3C trace context of the request that published it, when there was one.",
    "joinedup-origin-topic": "The agency topic admission read it from.",
    "joinedup-origin-partition": "The partition of the agency topic it was read from.",
    "joinedup-origin-offset": "Its offset on the agency topic.",
}
_FORWARDED = ("joinedup-origin-topic", "joinedup-origin-partition", "joinedup-origin-offset")

_DESCRIPTION = (
    "Agencies publish facts about a person (referrals, transitions, discharges, contacts) to "
    "their own topic; joinedup admits them onto person-events, keyed by an opaque person id, "
    "and publishes the alerts and governance decisions it derives.\n\n"
    "Every value is Avro binary in one of two framings, both always accepted by joinedup's "
    "readers: single-object encoding (`C3 01`, the 8-byte CRC-64-AVRO fingerprint of the "
    "writer schema, the body) or the Confluent wire format (`00`, the 4-byte big-endian schema "
    "id, the body). The subjects and schema ids are served read-only by the gateway "
    "(`/schema-registry`, the Confluent REST subset decoders use). Readers resolve any earlier "
    "schema version against the newest one. No key and no header holds personal data.\n\n"
    "Topic names start with the deployment's prefix (`JOINEDUP_TOPIC_PREFIX`, here "
    "`{prefix}`). See docs/publishing-to-kafka.md.\n")


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, readable in the checked-in file."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def document(topics: Topics) -> dict[str, Any]:
    """The AsyncAPI document as a dict (YAML-ready, keys in reading order)."""
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "joinedup Kafka topics", "version": "1.0.0",
                 "description": _DESCRIPTION.format(prefix=topics.prefix)},
        "defaultContentType": "application/avro",
        "servers": {"kafka": {
            "host": "{bootstrap}", "protocol": "kafka",
            "description": "The deployment's Kafka cluster (SASL/SCRAM over TLS; each agency "
                           "writes only its own topic: deploy/kafka/).",
            "variables": {"bootstrap": {"default": "localhost:9092",
                                        "description": "a bootstrap server, host:port"}},
            "bindings": {"kafka": {"schemaRegistryUrl": "http://127.0.0.1:8080/schema-registry",
                                   "schemaRegistryVendor": "confluent",
                                   "bindingVersion": KAFKA_BINDING}}}},
        "channels": _channels(topics),
        "operations": _operations(),
        "components": {"schemas": _schemas(), "messages": _messages(topics)},
    }


def render(topics: Topics) -> str:
    """The document as YAML (deterministic: the same code and schemas give the same text)."""
    return yaml.dump(document(topics), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=100)


def _channels(topics: Topics) -> dict[str, Any]:
    stem = topics.agency("agency").removesuffix(".agency")

    def channel(address: str, description: str, *messages: str) -> dict[str, Any]:
        return {"address": address, "description": description,
                "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
                "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING}}}

    agency = channel(f"{stem}.{{agency}}",
                     "One topic per agency, written only by that agency's principal (directly, "
                     "or through the gateway as the agency it authenticated).", "agencyEvent")
    agency["parameters"] = {"agency": {
        "description": "the agency's registered id: 1-63 lower-case letters, digits and inner "
                       "hyphens"}}
    hmpps = channel(f"{topics.prefix}.hmpps-domain-events.{{agency}}",
                    "HMPPS domain events as HMPPS publishes them (JSON), one topic per HMPPS "
                    "agency, written by that agency's bridge or by the gateway's SNS endpoint; "
                    "the gateway maps them onto agency events (docs/formats-hmpps.md).",
                    "hmppsDomainEvent")
    hmpps["parameters"] = dict(agency["parameters"])
    return {
        "agencyEvents": agency,
        "hmppsDomainEvents": hmpps,
        "personEvents": channel(topics.person_events,
                                "What admission let through, keyed by person, in the one order "
                                "every read model folds; with the person index's merges and "
                                "separations. Written only by joinedup.",
                                "personEvent", "identityEvent"),
        "alerts": channel(topics.alerts, "Every change in an alert's life, keyed by person.",
                          "alertEvent"),
        "governance": channel(topics.governance,
                              "Consent, agreements, coordination episodes, grants and "
                              "disclosures, as recorded.", "governanceEvent"),
    }


def _operations() -> dict[str, Any]:
    def operation(action: str, channel: str, summary: str, *messages: str) -> dict[str, Any]:
        return {"action": action, "channel": {"$ref": f"#/channels/{channel}"},
                "summary": summary,
                "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages]}

    return {
        "receiveAgencyEvents": operation("receive", "agencyEvents",
                                         "Admission reads every agency's topic.", "agencyEvent"),
        "receiveHmppsDomainEvents": operation("receive", "hmppsDomainEvents",
                                              "The gateway's HMPPS intake maps them.",
                                              "hmppsDomainEvent"),
        "sendPersonEvents": operation("send", "personEvents",
                                      "Admitted events and identity changes, keyed by person.",
                                      "personEvent", "identityEvent"),
        "sendAlerts": operation("send", "alerts", "Alert events, from the outbox.",
                                "alertEvent"),
        "sendGovernance": operation("send", "governance", "Governance events, from the outbox.",
                                    "governanceEvent"),
    }


def _schema_name(codec: AvroCodec) -> str:
    return f"{codec.current.schema['name'].split('.')[-1]}V{codec.current.version}"


def _schemas() -> dict[str, Any]:
    return {_schema_name(c): {"schemaFormat": AVRO_FORMAT,
                              "schema": json.loads(c.current.text)}
            for c in codecs()}


def _headers(names: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "properties": {
        name: {"type": "string",
               "description": HEADER_DESCRIPTIONS.get(name, "See services/common/serde/headers.py.")}
        for name in names}}


def _message(codec: AvroCodec, subject: str, title: str, summary: str, key: str,
             header_names: tuple[str, ...]) -> dict[str, Any]:
    ids = ", ".join(f"v{v.version}: {confluent_schema_id(v.fingerprint)}"
                    for v in codec.versions)
    message: dict[str, Any] = {
        "name": codec.current.schema["name"].split(".")[-1], "title": title,
        "summary": summary,
        "description": f"Avro `{codec.current.family}` (schemas/{codec.current.family}.vN.avsc)"
                       f"; written with the newest version, every earlier one still readable. "
                       f"Registry subject `{subject}`; schema ids {ids}.",
        "contentType": "application/avro",
        "payload": {"$ref": f"#/components/schemas/{_schema_name(codec)}"},
        "bindings": {"kafka": {
            "key": {"type": "string", "description": key},
            "schemaIdLocation": "payload", "schemaIdPayloadEncoding": "confluent",
            "schemaLookupStrategy": "TopicNameStrategy" if subject.endswith("-value")
                                    else "TopicRecordNameStrategy",
            "bindingVersion": KAFKA_BINDING}},
    }
    if header_names:
        message["headers"] = _headers(header_names)
    return message


#: the CloudEvents Kafka binding headers of what joinedup itself writes
_BINDING = (h.CONTENT_TYPE, h.SPECVERSION, h.EVENT_ID, h.SOURCE, h.EVENT_TYPE, h.TIME)


def _messages(topics: Topics) -> dict[str, Any]:
    agency_headers = tuple(h.CARRIED)
    person_key = "The opaque person id (never an identifier value)."
    by_subject = {s.name: s for s in registry.subjects(topics)}
    return {
        "agencyEvent": _message(
            agency_codec(), registry.value_subject(f"{topics.prefix}.agency-events.<agency>"),
            "Agency event", "A fact an agency publishes about a person.",
            "A keyed hash of the person's strongest identifier: the first 32 hex digits of "
            "HMAC-SHA256(deployment secret, `<scheme>:<value>`) (services/common/"
            "message_keys.py). Never an identifier value.", agency_headers),
        "personEvent": _message(
            by_subject[registry.value_subject(topics.person_events)].codec,
            registry.value_subject(topics.person_events), "Admitted agency event",
            "An agency event as admitted, its personal fields sealed.", person_key,
            agency_headers + _FORWARDED),
        "identityEvent": _message(
            by_subject[registry.identity_subject(topics)].codec, registry.identity_subject(topics),
            "Identity change", "A merge or separation in the person index.", person_key,
            _BINDING),
        "alertEvent": _message(
            by_subject[registry.value_subject(topics.alerts)].codec,
            registry.value_subject(topics.alerts), "Alert event",
            "A change in an alert's life.", person_key, _BINDING),
        "hmppsDomainEvent": {
            "name": "HmppsDomainEvent", "title": "HMPPS domain event",
            "summary": "As HMPPS publishes it; the mapping file decides what it becomes.",
            "contentType": "application/json",
            "payload": {"type": "object", "required": ["eventType", "version", "occurredAt"],
                        "properties": {
                            "eventType": {"type": "string"}, "version": {"type": "integer"},
                            "occurredAt": {"type": "string"},
                            "publishedAt": {"type": "string"},
                            "detailUrl": {"type": "string"},
                            "personReference": {"type": "object"},
                            "additionalInformation": {"type": "object"}}},
            "bindings": {"kafka": {"key": {"type": "string", "description":
                                           "Any; never read (HMPPS events carry no id)."},
                                   "bindingVersion": KAFKA_BINDING}}},
        "governanceEvent": _message(
            by_subject[registry.value_subject(topics.governance)].codec,
            registry.value_subject(topics.governance), "Governance event",
            "A decision about who may see a person's records.",
            "The person id, or the agreement id for an agreement.", _BINDING),
    }
