"""Person-index changes <-> Avro record <-> bytes (``schemas/identity_event.v*.avsc``).

Each change travels with the envelope the log needs: its own id (the idempotency key) and
when the identity step decided it. One handler per kind, both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.events import Identifier
from services.common.serde.avro import DecodeError, identity_codec
from services.identity.domain import (
    Attached,
    Change,
    Erased,
    Identified,
    Merged,
    PossibleMatch,
    Separated,
)


@dataclass(frozen=True, slots=True)
class IdentityEvent:
    change_id: str
    at: datetime
    change: Change


_KIND = {Identified: "identified", Attached: "attached", Merged: "merged",
         Separated: "separated", PossibleMatch: "possible_match", Erased: "erased"}


def kind_of(change: Change) -> str:
    return _KIND[type(change)]


def _fields(change: Change) -> dict[str, Any]:
    if isinstance(change, Identified | Attached):
        return {"person_id": change.person_id, "identifiers": change.identifiers}
    if isinstance(change, Merged):
        return {"person_id": change.into, "person_ids": change.absorbed,
                "asserted_by": change.asserted_by}
    if isinstance(change, Separated):
        return {"person_id": change.person_id, "from_person_id": change.from_id,
                "identifiers": change.identifiers, "asserted_by": change.asserted_by}
    if isinstance(change, Erased):
        return {"person_id": "", "person_ids": change.person_ids}
    return {"person_id": "", "person_ids": change.person_ids, "reason": change.reason}


def identity_event_to_record(event: IdentityEvent) -> dict[str, Any]:
    fields = _fields(event.change)
    return {
        "change_id": event.change_id, "kind": kind_of(event.change), "at": event.at,
        "person_id": fields["person_id"], "from_person_id": fields.get("from_person_id"),
        "person_ids": list(fields.get("person_ids", ())),
        "identifiers": [{"scheme": i.scheme, "value": i.value}
                        for i in fields.get("identifiers", ())],
        "asserted_by": fields.get("asserted_by"), "reason": fields.get("reason"),
        "schema_version": identity_codec().current.version,
    }


def _identifiers(record: dict[str, Any]) -> tuple[Identifier, ...]:
    return tuple(Identifier(i["scheme"], i["value"]) for i in record["identifiers"])


_FROM_RECORD: dict[str, Callable[[dict[str, Any]], Change]] = {
    "identified": lambda r: Identified(r["person_id"], _identifiers(r)),
    "attached": lambda r: Attached(r["person_id"], _identifiers(r)),
    "merged": lambda r: Merged(r["person_id"], tuple(r["person_ids"]), r["asserted_by"]),
    "separated": lambda r: Separated(r["person_id"], r["from_person_id"], _identifiers(r),
                                     r["asserted_by"]),
    "possible_match": lambda r: PossibleMatch(tuple(r["person_ids"]), r["reason"]),
    "erased": lambda r: Erased(tuple(r["person_ids"])),
}


def identity_event_from_record(record: dict[str, Any]) -> IdentityEvent:
    build = _FROM_RECORD.get(record.get("kind", ""))
    if build is None:
        raise DecodeError("unknown identity change", "kind")
    at = record["at"]
    if not isinstance(at, datetime):
        raise DecodeError("expected a timestamp", "at")
    return IdentityEvent(record["change_id"], at if at.tzinfo else at.replace(tzinfo=UTC),
                         build(record))


def encode_identity_event(event: IdentityEvent) -> bytes:
    return identity_codec().encode(identity_event_to_record(event))


def decode_identity_event(data: bytes) -> IdentityEvent:
    return identity_event_from_record(identity_codec().decode(data))
