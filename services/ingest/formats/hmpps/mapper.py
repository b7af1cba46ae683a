"""One HMPPS domain event (its JSON as published) -> one joinedup agency event, by the
mapping file; or the reason it cannot be, in words that name fields, never values.

Pure: the publishing agency and the deployment's key secret are arguments. Structure and
enumerations are checked; free text (``description``) is never read.

**The idempotency key.** HMPPS events carry no id, so the event id is derived from content:
HMAC-SHA256 under the deployment's message-key secret of the agency, the entry's
``key_family`` and its ``key`` parts (e.g. NOMS number, the day in Europe/London and the
release reason), as a UUID. Two reports of one fact (``prisoner-offender-search`` at once,
``prison-offender-events`` later with another ``occurredAt``) get one id; keyed, because a
plain hash of a NOMS number, a day and a reason is reversed by trying them all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from services.common.events import (
    PAYLOAD_BY_FAMILY,
    AgencyEvent,
    Identifier,
    Source,
    strongest_identifier,
)
from services.common.identifiers import identifier_problem
from services.ingest.formats.hmpps.mapping import (
    AGENCY,
    EVENT_TYPE,
    KEY,
    EventMapping,
    FieldSource,
    Mapping,
)

LONDON: Final = ZoneInfo("Europe/London")
SYSTEM: Final = "hmpps-domain-events"
#: HMPPS identifier types -> joinedup schemes (other types are not person identifiers here)
SCHEMES: Final = {"NOMS": "noms_number", "CRN": "crn"}
#: What CAS3 and approved-premises emitters write when they have no NOMS number.
NO_NOMS: Final = "Unknown NOMS Number"
MALFORMED: Final = "malformed"   # the label of an eventType that is not one


@dataclass(frozen=True, slots=True)
class Mapped:
    event: AgencyEvent
    hmpps_type: str


@dataclass(frozen=True, slots=True)
class Unmappable:
    """``kind``: "unmapped" (no entry for the type), "invalid" (breaks the structure or an
    enumeration) or "no_person" (no usable identifier). ``reason`` names fields only."""
    kind: str
    reason: str
    hmpps_type: str   # the eventType if it looks like one, else MALFORMED: safe as a label


def map_event(raw: bytes | str | dict[str, Any], agency: str, mapping: Mapping,
              key_secret: bytes) -> Mapped | Unmappable:
    message = _json(raw)
    if message is None:
        return Unmappable("invalid", "invalid: the message is not a JSON object", MALFORMED)
    event_type = message.get("eventType")
    if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type):
        return Unmappable("invalid", "invalid: eventType is missing or not an event type",
                          MALFORMED)
    entry = mapping.events.get(event_type)
    if entry is None:
        return Unmappable("unmapped", f"unmapped: HMPPS event type {event_type} has no "
                          f"mapping (mapping {mapping.version})", event_type)
    try:
        return Mapped(_mapped(message, entry, agency, key_secret), event_type)
    except _Refused as exc:
        return Unmappable(exc.kind, f"{exc.kind}: {event_type}: {exc}", event_type)


class _Refused(Exception):  # noqa: N818 - internal: carries the reason out of the walk
    def __init__(self, reason: str, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.kind = kind


def _mapped(message: dict[str, Any], entry: EventMapping, agency: str,
            key_secret: bytes) -> AgencyEvent:
    occurred_at = _moment(message.get("occurredAt"), "occurredAt", required=True)
    assert occurred_at is not None
    published_at = _moment(message.get("publishedAt"), "publishedAt", required=False)
    for path in entry.required:
        if _at(message, path) is None:
            raise _Refused(f"{path} is required")
    for path, allowed in entry.enums:
        value = _at(message, path)
        if value is not None and value not in allowed:
            raise _Refused(f"{path} is not one of {', '.join(sorted(allowed))}")
    identifiers = _identifiers(message, entry)
    key = _key(message, entry, agency, occurred_at, identifiers, key_secret)
    fields = {name: _field(message, source, name, key, agency)
              for name, source in entry.payload}
    payload_type = PAYLOAD_BY_FAMILY[entry.becomes.split(".", 1)[0]]
    extra = {"hmpps_event_type": str(message["eventType"])}
    version = message.get("version")
    if isinstance(version, int | str) and not isinstance(version, bool):
        extra["hmpps_version"] = str(version)[:16]
    return AgencyEvent(
        event_id=key, event_type=entry.becomes, occurred_at=occurred_at,
        # The agency system recorded it when it published it; never before it happened.
        recorded_at=max(published_at or occurred_at, occurred_at),
        source=Source(agency, entry.service_kind, SYSTEM), identifiers=identifiers,
        payload=payload_type(**{k: v for k, v in fields.items() if v is not None}),
        sensitivity=entry.sensitivity, extra=extra)


def _identifiers(message: dict[str, Any], entry: EventMapping) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    if entry.identifiers:
        for scheme, path in entry.identifiers:
            found.extend(_identifier(scheme, _at(message, path), path))
    else:
        listed = _at(message, "personReference.identifiers")
        if listed is not None and not isinstance(listed, list):
            raise _Refused("personReference.identifiers must be a list")
        for index, item in enumerate(listed or []):
            where = f"personReference.identifiers[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise _Refused(f"{where} must be an object with a type and a value")
            known = SCHEMES.get(item["type"])
            if known is not None:
                found.extend(_identifier(known, item.get("value"), f"{where}.value"))
        if not found:  # older prison emitters name the prisoner only here
            found.extend(_identifier("noms_number", _at(message, "additionalInformation.nomsNumber"),
                                     "additionalInformation.nomsNumber"))
    unique = tuple(dict.fromkeys(found))
    if not unique:
        raise _Refused("no person identifier (a NOMS number or CRN) in the message",
                       "no_person")
    return unique


def person_of(raw: bytes) -> Identifier | None:
    """The strongest usable identifier of a message, for its Kafka key (ordering only; the
    mapper decides what the message means), or None."""
    message = _json(raw)
    if message is None:
        return None
    found: list[Identifier] = []
    listed = _at(message, "personReference.identifiers")
    for item in listed if isinstance(listed, list) else []:
        scheme = SCHEMES.get(str(item.get("type"))) if isinstance(item, dict) else None
        value = item.get("value") if scheme else None
        if scheme and isinstance(value, str) and value != NO_NOMS and not identifier_problem(
                scheme, value.strip()):
            found.append(Identifier(scheme, value.strip()))
    noms = _at(message, "additionalInformation.nomsNumber")
    if isinstance(noms, str) and not identifier_problem("noms_number", noms.strip()):
        found.append(Identifier("noms_number", noms.strip()))
    return strongest_identifier(found) if found else None


def _identifier(scheme: str, value: Any, where: str) -> list[Identifier]:
    if value is None or value == NO_NOMS:  # "no NOMS number" is not an identifier
        return []
    if not isinstance(value, str) or identifier_problem(scheme, value.strip()):
        raise _Refused(f"{where} is not a valid {scheme.replace('_', ' ')}")
    return [Identifier(scheme, value.strip())]


def _key(message: dict[str, Any], entry: EventMapping, agency: str, occurred_at: datetime,
         identifiers: tuple[Identifier, ...], key_secret: bytes) -> str:
    by_scheme = {i.scheme: i.value for i in identifiers}
    parts = [agency, entry.key_family]
    for part in entry.key:
        if part == "occurred_date":
            parts.append(occurred_at.astimezone(LONDON).date().isoformat())
        elif part == "occurred_at":
            parts.append(occurred_at.astimezone(UTC).isoformat())
        elif "." in part:
            value = _at(message, part)
            parts.append("" if value is None else json.dumps(value, sort_keys=True))
        else:  # a scheme; missing (a CAS3 event with no CRN): the strongest one stands in
            parts.append(by_scheme.get(part)
                         or "~" + strongest_identifier(identifiers).value)
    digest = hmac.new(key_secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def _field(message: dict[str, Any], source: FieldSource, name: str, key: str,
           agency: str) -> str | None:
    if source.constant is not None:
        return {KEY: key, AGENCY: agency}.get(source.constant, source.constant)
    assert source.path is not None
    value = _at(message, source.path)
    if value is None:
        return key if source.default_to_key else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Refused(f"{source.path} must be text")
    text = str(value).strip()
    if source.check and identifier_problem(source.check, text):
        raise _Refused(f"{source.path} is not a valid {source.check.replace('_', ' ')}")
    if not text or len(text) > 200:
        raise _Refused(f"{source.path} must be 1-200 characters")
    return text


def _moment(value: Any, name: str, *, required: bool) -> datetime | None:
    """An ISO date-time (no offset: Europe/London, as HMPPS emitters write local time) or a
    bare date (CAS3/AP emitters: midnight in Europe/London), in UTC."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Refused(f"{name} is required (an ISO 8601 date-time)")
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0), LONDON)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Refused(f"{name} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(UTC)


def _at(message: dict[str, Any], path: str) -> Any:
    value: Any = message
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _json(raw: bytes | str | dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
