"""Avro single-object encoding with schema resolution.

Wire format (Avro specification, "Single object encoding"): two marker bytes ``C3 01``, the
8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form, then the
Avro binary body. The fingerprint identifies the writer schema; the reader schema is always
the newest version, and fastavro's reader/writer resolution fills in what older writers did
not have. An unknown fingerprint is a :class:`DecodeError`, never a guess.

The Confluent wire format (``serde/confluent.py``: a zero byte, a 4-byte big-endian schema id,
the same Avro body) is the alternative a process may write instead
(``JOINEDUP_KAFKA_WIRE_FORMAT=confluent``), so standard Kafka tools can decode with a schema
registry. Every reader accepts both framings always, whatever the process writes, so a
deployment switches without downtime.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
#: The Confluent wire format's first byte ("magic byte" 0), then a 4-byte schema id.
CONFLUENT_MAGIC = 0
_VERSIONED = re.compile(r"^(?P<family>[a-z_]+)\.v(?P<version>\d+)\.avsc$")


class DecodeError(ValueError):
    """A message that cannot be read; ``reason`` is safe to log (it holds no field values)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason if field is None else f"{field}: {reason}")
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class SchemaVersion:
    family: str
    version: int
    schema: dict[str, Any]       # parsed by fastavro
    fingerprint: bytes           # 8 bytes, little-endian CRC-64-AVRO
    #: the same schema read with uuid strings left as text (see ``_uuids_as_text``)
    reading: dict[str, Any]
    #: the schema file's JSON, compact: what a schema registry serves for it
    text: str = ""


def load_schema_versions(family: str) -> list[SchemaVersion]:
    """Every ``schemas/<family>.vN.avsc``, oldest first."""
    found: list[SchemaVersion] = []
    for entry in resources.files("schemas").iterdir():
        match = _VERSIONED.match(entry.name)
        if not match or match["family"] != family:
            continue
        raw = json.loads(entry.read_text())
        canonical = to_parsing_canonical_form(
            fastavro.parse_schema(raw, _write_hint=False, _force=True))
        digest = int(fingerprint(canonical, "CRC-64-AVRO"), 16).to_bytes(8, "big")
        # Parsed with fastavro's "already parsed" hint: without it every read and write
        # parses the schema again (about 100 µs a message).
        parsed = fastavro.parse_schema(raw)
        reading = fastavro.parse_schema(_uuids_as_text(raw))
        assert isinstance(parsed, dict) and isinstance(reading, dict)
        found.append(SchemaVersion(family, int(match["version"]), parsed, digest[::-1],
                                   reading, json.dumps(raw, separators=(",", ":"))))
    if not found:
        raise LookupError(f"no schemas named {family}.vN.avsc")
    return sorted(found, key=lambda v: v.version)


def _uuids_as_text(schema: Any) -> Any:
    """The schema without its ``uuid`` logical types: fastavro then hands a uuid over as the
    string it is on the wire instead of building a ``uuid.UUID`` that the event turns back
    into a string (5 µs an event, twice). Its format is checked with the event's other
    checks (``event_problems``). The wire format is the same: uuid annotates a string."""
    if isinstance(schema, dict):
        if schema.get("logicalType") == "uuid":
            return {k: v for k, v in schema.items() if k != "logicalType"}
        return {k: _uuids_as_text(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_uuids_as_text(v) for v in schema]
    return schema


def confluent_schema_id(digest: bytes) -> int:
    """The stable Confluent schema id of a schema in the repository, from its fingerprint
    (``digest``): it never changes when other schema files are added (a registry's own counter,
    or an order over files, would renumber) and every process agrees without asking anyone.
    In 1 .. 2**31 - 1 (ids are signed 32-bit). A collision within a family is refused when its
    codec loads; a unit test checks there is none across families."""
    return int.from_bytes(digest, "little") % 0x7FFFFFFF + 1


@dataclass(frozen=True)
class Framing:
    """How this process frames what it writes, and the Confluent schema ids it reads.

    ``confluent``: write the Confluent wire format instead of single-object encoding.
    ``registry_ids``: the ids an external schema registry gave our schemas (fingerprint ->
    id); they are written instead of the stable ids, and read besides them.
    """

    confluent: bool = False
    registry_ids: Mapping[bytes, int] = field(default_factory=dict)

    def write_id(self, version: SchemaVersion) -> int:
        return self.registry_ids.get(version.fingerprint) or confluent_schema_id(
            version.fingerprint)


#: What this process writes: single-object encoding unless its entry point chose otherwise
#: from its settings (``use_framing(framing_from_settings(settings))``, in the CLI's one place
#: where settings are read), so importing the serde never reads the environment.
_framing = Framing()


def use_framing(framing: Framing | None) -> None:
    """Set this process's framing (None: back to the default, single-object encoding)."""
    global _framing
    _framing = framing if framing is not None else Framing()


def framing() -> Framing:
    """This process's framing."""
    return _framing


class AvroCodec:
    """Encodes records with the newest schema of a family; decodes any known version, in
    either framing."""

    def __init__(self, family: str) -> None:
        self.versions = load_schema_versions(family)
        self.current = self.versions[-1]
        self._by_fingerprint = {v.fingerprint: v for v in self.versions}
        self._by_schema_id = {confluent_schema_id(v.fingerprint): v for v in self.versions}
        if len(self._by_schema_id) != len(self.versions):  # pragma: no cover - checked by tests
            raise LookupError(f"two {family} schemas share a Confluent schema id")

    def encode(self, record: dict[str, Any], wire: Framing | None = None) -> bytes:
        """The record, framed as ``wire`` says (default: this process's framing)."""
        buffer = io.BytesIO()
        wire = wire or framing()
        if wire.confluent:
            buffer.write(CONFLUENT_MAGIC.to_bytes(1, "big"))
            buffer.write(wire.write_id(self.current).to_bytes(4, "big"))
        else:
            buffer.write(MAGIC)
            buffer.write(self.current.fingerprint)
        fastavro.schemaless_writer(buffer, self.current.schema, record)
        return buffer.getvalue()

    def wrote(self, data: bytes | None) -> bool:
        """Whether ``data`` is framed with one of this family's schemas (tells the families
        apart on a topic that carries more than one)."""
        if data is None or len(data) < 5:
            return False
        if data[:2] == MAGIC:
            return len(data) >= 10 and bytes(data[2:10]) in self._by_fingerprint
        return data[0] == CONFLUENT_MAGIC and self._by_id(data) is not None

    def _by_id(self, data: bytes) -> SchemaVersion | None:
        schema_id = int.from_bytes(data[1:5], "big")
        found = self._by_schema_id.get(schema_id)
        if found is None:  # an id an external registry gave (read once, at first need)
            found = next((self._by_fingerprint[fp] for fp, given in
                          framing().registry_ids.items()
                          if given == schema_id and fp in self._by_fingerprint), None)
        return found

    def writer_version(self, data: bytes) -> SchemaVersion:
        if data[:2] == MAGIC and len(data) >= 10:
            writer = self._by_fingerprint.get(bytes(data[2:10]))
            if writer is None:
                raise DecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
            return writer
        found = self._by_id(data) if len(data) >= 5 and data[0] == CONFLUENT_MAGIC else None
        if found is None:
            # A Confluent frame naming an id that is not one of ours reads no better than any
            # other bytes that are not single-object encoded, and gets the same reason.
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        return found

    def decode(self, data: bytes, named_unions: bool = True) -> dict[str, Any]:
        """Decode to a dict. `named_unions` returns records inside unions as
        ``(name, record)``; without it decoding is about a third faster."""
        writer = self.writer_version(data)
        # Schema resolution costs ~100 µs a message in fastavro; skip it when the writer
        # already used the newest schema (the common case).
        reader = None if writer is self.current else self.current.reading
        body = data[10:] if data[0] == MAGIC[0] else data[5:]
        try:
            return fastavro.schemaless_reader(  # type: ignore[return-value]
                io.BytesIO(body), writer.reading, reader,
                return_record_name=named_unions, return_record_name_override=named_unions,
            )
        except (EOFError, ValueError, IndexError, UnicodeDecodeError, TypeError,
                OverflowError) as exc:  # OverflowError: a timestamp beyond year 9999
            raise DecodeError(f"corrupt Avro body ({type(exc).__name__})") from None


@cache
def agency_codec() -> AvroCodec:
    return AvroCodec("agency_event")


@cache
def alert_codec() -> AvroCodec:
    return AvroCodec("alert_event")


@cache
def identity_codec() -> AvroCodec:
    return AvroCodec("identity_event")


@cache
def governance_codec() -> AvroCodec:
    return AvroCodec("governance_event")
