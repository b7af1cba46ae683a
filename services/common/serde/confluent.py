"""The Confluent wire format, the alternative framing standard Kafka tools decode.

A message is ``0x00`` (the "magic byte"), the writer schema's id as a 4-byte big-endian
integer, then the Avro binary body: the same body as single-object encoding, framed
differently (``avro.py`` reads and writes both). A tool given a schema registry URL fetches
``/schemas/ids/<id>`` and decodes the body with any Avro library.

Which id a schema has:

* by default the **stable id** derived from the schema's fingerprint
  (``avro.confluent_schema_id``): the same in every process and every deployment, with no
  registry to ask, and served read-only by joinedup (``services/registry/http.py``);
* when ``JOINEDUP_SCHEMA_REGISTRY_URL`` names an external Confluent-compatible registry, the id
  that registry gives: every schema is registered there (``schema_registry.register``) when
  the process starts (``framing_from_settings``, called by the CLI where it reads the
  settings), and its ids are written instead. Messages carrying stable ids stay readable.

A process writes the framing ``JOINEDUP_KAFKA_WIRE_FORMAT`` names; every process reads both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from services.common.serde.avro import (
    AvroCodec,
    Framing,
    agency_codec,
    alert_codec,
    confluent_schema_id,
    governance_codec,
    identity_codec,
)

if TYPE_CHECKING:
    from services.common.settings import Settings

WireFormat = Literal["single-object", "confluent"]
#: what a process writes unless told otherwise
SINGLE_OBJECT: Framing = Framing()
#: the Confluent wire format with the stable ids
CONFLUENT: Framing = Framing(confluent=True)


def codecs() -> tuple[AvroCodec, ...]:
    """Every record family joinedup writes to Kafka."""
    return (agency_codec(), identity_codec(), alert_codec(), governance_codec())


def encode(codec: AvroCodec, record: dict[str, Any]) -> bytes:
    """A record in the Confluent wire format with its stable schema id, whatever this
    process's own framing (what a direct publisher without a registry writes)."""
    return codec.encode(record, CONFLUENT)


def schema_id(data: bytes) -> int:
    """The schema id a Confluent-framed message carries."""
    if len(data) < 5 or data[0] != 0:
        raise ValueError("not the Confluent wire format (no magic byte 0)")
    return int.from_bytes(data[1:5], "big")


def framing_for(wire_format: WireFormat, registry_ids: dict[bytes, int] | None = None
                ) -> Framing:
    """The framing a process with these settings writes, refusing registry ids that would be
    read as another schema's stable id."""
    ids = dict(registry_ids or {})
    stable = {confluent_schema_id(v.fingerprint): v.fingerprint
              for c in codecs() for v in c.versions}
    for fingerprint, given in ids.items():
        if stable.get(given, fingerprint) != fingerprint:
            raise ValueError(f"the schema registry's id {given} is the stable id of another "
                             "joinedup schema: decoding would be ambiguous")
    return Framing(confluent=wire_format == "confluent", registry_ids=ids)


def framing_from_settings(settings: Settings) -> Framing:
    """The framing these settings choose: with an external schema registry configured, every
    schema is registered there first (at the process's start) and its ids written."""
    from services.common.schema_registry import register  # it reads the schemas through us

    ids = (register(settings.schema_registry_url, settings.topics)
           if settings.schema_registry_url else None)
    return framing_for(settings.kafka_wire_format, ids)
