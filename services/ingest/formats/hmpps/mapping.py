"""The HMPPS mapping file, loaded and checked at start (as the rule pack is): a bad file
stops the process with the entry and the reason, never a half-loaded mapping."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from services.common.events import (
    EVENT_TYPES,
    IDENTIFIER_SCHEMES,
    PAYLOAD_BY_FAMILY,
    SENSITIVITIES,
    SERVICE_KINDS,
)

DEFAULT_PATH: Final = Path(__file__).with_name("mapping.toml")
#: What an HMPPS eventType looks like (dotted lower-case words). Anything else is not an
#: event type, and is never used as a metric label or shown.
EVENT_TYPE: Final = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9-]+){1,7}$")
KEY_PARTS: Final = frozenset({"occurred_date", "occurred_at", *IDENTIFIER_SCHEMES})
_PATH: Final = re.compile(r"^(?:additionalInformation|personReference)(?:\.[A-Za-z0-9_]+)+$")
KEY: Final = "$key"
AGENCY: Final = "$agency"


class MappingError(ValueError):
    """The mapping file is wrong: names the entry and the reason."""


@dataclass(frozen=True, slots=True)
class FieldSource:
    """A payload field read from the message (``path``), a constant, or the key/agency."""
    constant: str | None = None
    path: str | None = None
    default_to_key: bool = False
    check: str | None = None       # an identifier scheme the value must be valid in


@dataclass(frozen=True, slots=True)
class EventMapping:
    hmpps: str
    becomes: str
    service_kind: str
    sensitivity: str
    key_family: str
    key: tuple[str, ...]
    payload: tuple[tuple[str, FieldSource], ...]
    enums: tuple[tuple[str, frozenset[str]], ...] = ()
    required: tuple[str, ...] = ()
    identifiers: tuple[tuple[str, str], ...] = ()   # (scheme, path): instead of personReference


@dataclass(frozen=True, slots=True)
class Mapping:
    version: str
    events: dict[str, EventMapping]


def load_mapping(path: Path | None = None) -> Mapping:
    where = path or DEFAULT_PATH
    try:
        document = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"{where}: {exc}") from exc
    return parse_mapping(document)


def parse_mapping(document: dict[str, Any]) -> Mapping:
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise MappingError("version: a non-empty string is required")
    entries = document.get("events")
    if not isinstance(entries, list) or not entries:
        raise MappingError("events: at least one [[events]] entry is required")
    events: dict[str, EventMapping] = {}
    for index, entry in enumerate(entries):
        where = f"events[{index}]"
        if not isinstance(entry, dict):
            raise MappingError(f"{where}: must be a table")
        mapping = _entry(entry, where)
        if mapping.hmpps in events:
            raise MappingError(f"{where}: {mapping.hmpps} is mapped twice")
        events[mapping.hmpps] = mapping
    return Mapping(version, events)


_ENTRY_KEYS: Final = frozenset({"hmpps", "becomes", "service_kind", "sensitivity", "key_family",
                                "key", "payload", "enums", "required", "identifiers"})


def _entry(entry: dict[str, Any], where: str) -> EventMapping:
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise MappingError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    hmpps = _text(entry, "hmpps", where)
    where = f"{where} ({hmpps})"
    if not EVENT_TYPE.match(hmpps):
        raise MappingError(f"{where}.hmpps: not an HMPPS event type")
    becomes = _text(entry, "becomes", where)
    if becomes not in EVENT_TYPES:
        raise MappingError(f"{where}.becomes: {becomes} is not a joinedup event type")
    service_kind = _one_of(entry, "service_kind", SERVICE_KINDS, where)
    sensitivity = _one_of(entry, "sensitivity", SENSITIVITIES, where)
    key = entry.get("key")
    if not isinstance(key, list) or not key or not all(
            isinstance(k, str) and (k in KEY_PARTS or _PATH.match(k)) for k in key):
        raise MappingError(f"{where}.key: a list of identifier schemes, occurred_date, "
                           "occurred_at or message paths is required")
    enums = entry.get("enums", {})
    if not isinstance(enums, dict) or not all(
            _PATH.match(p) and isinstance(v, list) and v and all(isinstance(s, str) for s in v)
            for p, v in enums.items()):
        raise MappingError(f"{where}.enums: path = [allowed values] expected")
    required = entry.get("required", [])
    if not isinstance(required, list) or not all(
            isinstance(p, str) and _PATH.match(p) for p in required):
        raise MappingError(f"{where}.required: a list of message paths expected")
    identifiers = entry.get("identifiers", {})
    if not isinstance(identifiers, dict) or not all(
            s in IDENTIFIER_SCHEMES and isinstance(p, str) and _PATH.match(p)
            for s, p in identifiers.items()):
        raise MappingError(f"{where}.identifiers: scheme = path expected")
    return EventMapping(
        hmpps, becomes, service_kind, sensitivity, _text(entry, "key_family", where),
        tuple(key), _payload(entry.get("payload"), becomes, where),
        tuple((p, frozenset(v)) for p, v in enums.items()), tuple(required),
        tuple(identifiers.items()))


def _payload(table: Any, becomes: str, where: str) -> tuple[tuple[str, FieldSource], ...]:
    if not isinstance(table, dict) or not table:
        raise MappingError(f"{where}.payload: a table of payload fields is required")
    payload_type = PAYLOAD_BY_FAMILY[becomes.split(".", 1)[0]]
    fields = {f.name: f for f in dataclasses.fields(payload_type)}
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING}
    out = []
    for name, spec in table.items():
        if name not in fields:
            raise MappingError(f"{where}.payload.{name}: not a field of {payload_type.__name__}")
        if fields[name].type not in ("str", "str | None"):
            raise MappingError(f"{where}.payload.{name}: only text fields can be mapped")
        out.append((name, _source(spec, f"{where}.payload.{name}")))
    missing = required - set(table)
    if missing:
        raise MappingError(f"{where}.payload: missing {', '.join(sorted(missing))}")
    return tuple(out)


def _source(spec: Any, where: str) -> FieldSource:
    if isinstance(spec, str):
        return FieldSource(constant=spec)
    if not isinstance(spec, dict) or not set(spec) <= {"from", "default", "check"}:
        raise MappingError(f"{where}: a constant or {{ from = path [, default, check] }}")
    path, default, check = spec.get("from"), spec.get("default"), spec.get("check")
    if not isinstance(path, str) or not _PATH.match(path):
        raise MappingError(f"{where}.from: a message path is required")
    if default not in (None, "key"):
        raise MappingError(f"{where}.default: only \"key\" is allowed")
    if check is not None and check not in IDENTIFIER_SCHEMES:
        raise MappingError(f"{where}.check: must be an identifier scheme")
    return FieldSource(path=path, default_to_key=default == "key", check=check)


def _text(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value:
        raise MappingError(f"{where}.{name}: a non-empty string is required")
    return value


def _one_of(entry: dict[str, Any], name: str, allowed: tuple[str, ...], where: str) -> str:
    value = _text(entry, name, where)
    if value not in allowed:
        raise MappingError(f"{where}.{name}: must be one of {', '.join(allowed)}")
    return value
