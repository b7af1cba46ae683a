"""Which schema each topic carries, as a Confluent schema registry would list it, and the
client that registers joinedup's schemas in an external registry.

The table is computed from the code's topic list and the schema files, so every process (and
the read-only registry the gateway serves) agrees without asking anyone:

* one **subject** per topic, ``<topic>-value`` (Confluent's default TopicNameStrategy), for
  the topic's record: ``agency_event`` on every agency topic and on person-events,
  ``alert_event`` on alerts, ``governance_event`` on governance;
* person-events also carries the person index's merges and separations (``identity_event``):
  they have their own subject, ``<topic>-joinedup.IdentityEvent`` (TopicRecordNameStrategy,
  Confluent's convention for a topic with more than one record type), so each subject holds
  one record type and a registry's compatibility check never compares two different ones;
* a subject's **versions** are the schema files' versions (``agency_event.v3.avsc`` is version
  3), so adding a file never renumbers another;
* a schema's **id** is its stable id (``avro.confluent_schema_id``), one per distinct schema,
  the same under every subject.

The dead-letter topic has no subject: it holds other topics' messages as they came.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from services.common.serde.avro import (
    AvroCodec,
    SchemaVersion,
    agency_codec,
    alert_codec,
    confluent_schema_id,
    governance_codec,
    identity_codec,
)
from services.common.serde.confluent import codecs
from services.common.settings import Topics

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
#: how long one call to an external registry may take
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Subject:
    name: str
    topic: str
    codec: AvroCodec

    @property
    def versions(self) -> tuple[SchemaVersion, ...]:
        return tuple(self.codec.versions)

    def version(self, number: int) -> SchemaVersion | None:
        return next((v for v in self.codec.versions if v.version == number), None)


def value_subject(topic: str) -> str:
    """TopicNameStrategy: the subject of a topic's message values."""
    return f"{topic}-value"


def identity_subject(topics: Topics) -> str:
    """TopicRecordNameStrategy for the identity events on person-events."""
    return f"{topics.person_events}-joinedup.{identity_codec().current.schema['name'].split('.')[-1]}"


def subjects(topics: Topics, agencies: Iterable[str] = ()) -> list[Subject]:
    """The subjects of every topic joinedup has, and of the named agencies' topics."""
    fixed = [
        Subject(value_subject(topics.person_events), topics.person_events, agency_codec()),
        Subject(identity_subject(topics), topics.person_events, identity_codec()),
        Subject(value_subject(topics.alerts), topics.alerts, alert_codec()),
        Subject(value_subject(topics.governance), topics.governance, governance_codec()),
    ]
    return fixed + [Subject(value_subject(topics.agency(a)), topics.agency(a), agency_codec())
                    for a in sorted(set(agencies))]


def find_subject(topics: Topics, name: str) -> Subject | None:
    """A subject by name: a fixed one, or any agency topic's (agencies come and go; every
    well-formed agency topic name has one)."""
    found = next((s for s in subjects(topics) if s.name == name), None)
    if found is None and name.endswith("-value"):
        agency = topics.agency_of(name[: -len("-value")])
        if agency is not None:
            found = subjects(topics, [agency])[-1]
    return found


def schema_by_id(schema_id: int) -> SchemaVersion | None:
    return next((v for c in codecs() for v in c.versions
                 if confluent_schema_id(v.fingerprint) == schema_id), None)


def subject_versions_of(topics: Topics, schema_id: int) -> list[tuple[str, int]]:
    """Every (subject, version) a schema id is registered under (agency topics aside)."""
    return [(s.name, v.version) for s in subjects(topics) for v in s.versions
            if confluent_schema_id(v.fingerprint) == schema_id]


class RegistryError(RuntimeError):
    """An external registry refused or did not answer (the message names the subject and
    the registry's error code, never a record)."""


def register(url: str, topics: Topics, agencies: Iterable[str] = (),
             client: httpx.Client | None = None) -> dict[bytes, int]:
    """Register every version of every subject (oldest first, so a registry checking
    compatibility sees them in order) and return the ids it gave (fingerprint -> id).
    Registering a schema that is already there is harmless: the registry answers its id."""
    own = client or httpx.Client(base_url=url.rstrip("/"), timeout=TIMEOUT_SECONDS)
    ids: dict[bytes, int] = {}
    try:
        for subject in subjects(topics, agencies):
            for version in subject.versions:
                ids[version.fingerprint] = _register_one(own, subject.name, version)
    except httpx.HTTPError as exc:
        raise RegistryError(f"the schema registry did not answer ({type(exc).__name__})"
                            ) from None
    finally:
        if client is None:
            own.close()
    return ids


def _register_one(client: httpx.Client, subject: str, version: SchemaVersion) -> int:
    answer = client.post(f"/subjects/{subject}/versions", json={"schema": version.text},
                         headers={"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE})
    if answer.status_code != 200:
        try:
            code = answer.json().get("error_code", answer.status_code)
        except ValueError:
            code = answer.status_code
        raise RegistryError(f"the schema registry refused {version.family} v{version.version} "
                            f"under {subject} (error {code})")
    given = answer.json().get("id")
    if not isinstance(given, int) or not 0 < given < 2**31:
        raise RegistryError(f"the schema registry answered no id for {subject}")
    return given
