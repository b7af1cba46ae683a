"""GovernanceEvent <-> Avro record <-> bytes (``schemas/governance_event.v*.avsc``).

The payload is a union of one record per event type; sets (agencies, categories) travel as
sorted arrays, so the same event always encodes to the same bytes.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from services.common.serde.avro import DecodeError, governance_codec
from services.reads.domain.governance import (
    EVENT_TYPE,
    PAYLOAD_OF,
    Actor,
    GovernanceEvent,
)

_NAMESPACE = "joinedup.governance"
_RECORD_NAME = {cls: f"{_NAMESPACE}.{cls.__name__}" for cls in EVENT_TYPE}
_CLASS_BY_RECORD = {name: cls for cls, name in _RECORD_NAME.items()}
_SETS = frozenset({"agencies", "categories"})


def _field(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


def governance_event_to_record(event: GovernanceEvent) -> dict[str, Any]:
    payload = event.payload
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "schema_version": governance_codec().current.version,
        "recorded_at": event.recorded_at,
        "person_id": event.person_id,
        "actor": dataclasses.asdict(event.actor),
        "payload": (_RECORD_NAME[type(payload)],
                    {f.name: _field(getattr(payload, f.name))
                     for f in dataclasses.fields(payload)}),
    }


def governance_event_from_record(record: dict[str, Any]) -> GovernanceEvent:
    name, fields = record["payload"]
    cls = _CLASS_BY_RECORD.get(name)
    if cls is None or PAYLOAD_OF.get(record["event_type"]) is not cls:
        raise DecodeError("the event type and its payload do not match", "payload")
    values = {k: (frozenset(v) if k in _SETS else _utc(v) if isinstance(v, datetime) else v)
              for k, v in fields.items()}
    return GovernanceEvent(str(record["event_id"]), _utc(record["recorded_at"]),
                           record.get("person_id"), Actor(**record["actor"]), cls(**values))


def encode_governance_event(event: GovernanceEvent) -> bytes:
    return governance_codec().encode(governance_event_to_record(event))


def decode_governance_event(data: bytes) -> GovernanceEvent:
    return governance_event_from_record(governance_codec().decode(data))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
