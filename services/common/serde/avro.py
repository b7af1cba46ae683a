"""Avro single-object encoding with schema resolution.

Wire format (Avro specification, "Single object encoding"): two marker bytes ``C3 01``, the
8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form, then the
Avro binary body. The fingerprint identifies the writer schema; the reader schema is always
the newest version, and fastavro's reader/writer resolution fills in what older writers did
not have. An unknown fingerprint is a :class:`DecodeError`, never a guess.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
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
                                   reading))
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


class AvroCodec:
    """Encodes records with the newest schema of a family; decodes any known version."""

    def __init__(self, family: str) -> None:
        self.versions = load_schema_versions(family)
        self.current = self.versions[-1]
        self._by_fingerprint = {v.fingerprint: v for v in self.versions}

    def encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(self.current.fingerprint)
        fastavro.schemaless_writer(buffer, self.current.schema, record)
        return buffer.getvalue()

    def wrote(self, data: bytes | None) -> bool:
        """Whether ``data`` is single-object encoded with one of this family's schemas (tells
        the families apart on a topic that carries more than one)."""
        return (data is not None and len(data) >= 10 and data[:2] == MAGIC
                and bytes(data[2:10]) in self._by_fingerprint)

    def writer_version(self, data: bytes) -> SchemaVersion:
        if len(data) < 10 or data[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        writer = self._by_fingerprint.get(bytes(data[2:10]))
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
        return writer

    def decode(self, data: bytes, named_unions: bool = True) -> dict[str, Any]:
        """Decode to a dict. `named_unions` returns records inside unions as
        ``(name, record)``; without it decoding is about a third faster."""
        writer = self.writer_version(data)
        # Schema resolution costs ~100 µs a message in fastavro; skip it when the writer
        # already used the newest schema (the common case).
        reader = None if writer is self.current else self.current.reading
        try:
            return fastavro.schemaless_reader(  # type: ignore[return-value]
                io.BytesIO(data[10:]), writer.reading, reader,
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
