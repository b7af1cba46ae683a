"""AgencyEvent <-> Avro record <-> bytes.

The JSON form (the gateway's bodies) is ``agency_json``; both give the same ``AgencyEvent``,
which then meets the same checks (``services/common/validation.py``) whichever way it came.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from services.common.events import (
    EVENT_TYPES,
    PAYLOAD_BY_FAMILY,
    AgencyEvent,
    Identifier,
    Source,
)
from services.common.serde.avro import DecodeError, agency_codec

_RECORD_NAME = {family: f"joinedup.{cls.__name__}" for family, cls in PAYLOAD_BY_FAMILY.items()}
_FAMILY_BY_RECORD = {name: family for family, name in _RECORD_NAME.items()}
_FIELDS = {family: tuple(f.name for f in dataclasses.fields(cls))
           for family, cls in PAYLOAD_BY_FAMILY.items()}
_SOURCE_FIELDS = tuple(f.name for f in dataclasses.fields(Source))
#: Decoding with the newest reader schema yields exactly these keys for each record.
_FIELD_SET = {family: frozenset(names) for family, names in _FIELDS.items()}


def event_to_record(event: AgencyEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "schema_version": agency_codec().current.version,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "causation_id": event.causation_id,
        # field by field: dataclasses.asdict deep-copies every value (dates included)
        "source": {name: getattr(event.source, name) for name in _SOURCE_FIELDS},
        "identifiers": [{"scheme": i.scheme, "value": i.value} for i in event.identifiers],
        "sensitivity": event.sensitivity,
        "payload": (_RECORD_NAME[event.family],
                    {name: getattr(event.payload, name) for name in _FIELDS[event.family]}),
        "extra": dict(event.extra),
    }


def event_from_record(record: dict[str, Any]) -> AgencyEvent:
    """Build and check an event from a record.

    The payload is either ``(record name, dict)`` (decoded with record names) or a bare
    dict as fastavro returns it without them (cheaper on the hot path); a bare dict
    is recognised by its field names (the reader schema yields exactly the newest record's
    fields, and the four payload records have different ones).
    """
    event_type = record["event_type"]
    if event_type not in EVENT_TYPES:
        raise DecodeError(f"unknown event type {event_type!r}", "event_type")
    family = event_type.split(".", 1)[0]
    payload = record["payload"]
    if isinstance(payload, tuple):
        payload_name, payload = payload
        matches = _FAMILY_BY_RECORD.get(payload_name) == family
    else:
        matches = payload.keys() == _FIELD_SET[family]
    if not matches:
        raise DecodeError(f"a {family} event needs a {family} payload", "payload")
    identifiers = tuple(Identifier(i["scheme"], i["value"]) for i in record["identifiers"])
    if not identifiers:
        raise DecodeError("at least one person identifier is required", "identifiers")
    payload_cls = PAYLOAD_BY_FAMILY[family]
    return AgencyEvent(
        event_id=str(record["event_id"]),
        event_type=event_type,
        occurred_at=_utc(record["occurred_at"], "occurred_at"),
        recorded_at=_utc(record["recorded_at"], "recorded_at"),
        source=Source(**record["source"]),
        identifiers=identifiers,
        payload=payload_cls(**{name: payload.get(name) for name in _FIELDS[family]}),
        sensitivity=record.get("sensitivity") or "GENERAL",
        schema_version=int(record.get("schema_version") or 1),
        causation_id=record.get("causation_id"),
        extra=dict(record.get("extra") or {}),
    )


def encode_event(event: AgencyEvent) -> bytes:
    return agency_codec().encode(event_to_record(event))


def decode_event(data: bytes) -> AgencyEvent:
    return event_from_record(agency_codec().decode(data, named_unions=False))


def read_event(value: bytes | None) -> tuple[AgencyEvent | None, str | None]:
    """A message value as an event, or (None, the reason it cannot be read, safe to log)."""
    if value is None:
        return None, "undecodable: empty message (tombstone)"
    try:
        return decode_event(value), None
    except DecodeError as exc:
        return None, f"undecodable: {exc}"
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        return None, f"undecodable: {type(exc).__name__} while reading the record"


def _utc(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):  # pragma: no cover - schema types forbid it
        raise DecodeError("expected a timestamp, got a date", field)
    raise DecodeError("expected a timestamp", field)
