"""Checks every event meets, whichever way it arrived (HTTP gateway or straight to Kafka).

Each problem names the field path and the reason, never the offending value: values can be
personal data.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.events import (
    IDENTIFIER_SCHEMES,
    PAYLOAD_BY_FAMILY,
    AgencyEvent,
    IdentityNotice,
    Source,
)
from services.common.identifiers import identifier_problem
from services.common.message_keys import carries_identifier
from services.common.serde.sealing import is_sealed

_SURROGATE = re.compile("[\ud800-\udfff]")
_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (Source, *PAYLOAD_BY_FAMILY.values())}
NUL_CHARACTER = "contains the NUL character (U+0000), which cannot be stored"
UNPAIRED_SURROGATE = "contains an unpaired surrogate (U+D800 to U+DFFF), which is not valid Unicode"


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    reason: str
    code: str = "invalid"  # a stable reason code for clients and metric labels (no values)

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def event_problems(
    event: AgencyEvent, now: datetime | None = None, future_tolerance: timedelta | None = None,
) -> list[Problem]:
    """Everything wrong with an event; empty when it may be accepted.

    `now` is given by the caller (the gateway passes the wall clock; the processor passes
    None and skips the future check, because replaying old messages must not fail it).
    """
    problems: list[Problem] = []
    try:
        uuid.UUID(event.event_id)
    except ValueError:
        problems.append(Problem("event_id", "must be a UUID", "invalid_event_id"))
    if event.recorded_at < event.occurred_at:
        problems.append(Problem("recorded_at", "is before occurred_at", "recorded_before_occurred"))
    if now is not None and future_tolerance is not None and (
            event.occurred_at > now + future_tolerance):
        problems.append(Problem(
            "occurred_at", f"is more than {int(future_tolerance.total_seconds())}s in the future",
            "occurred_in_future"))
    if not event.source.agency.strip():
        problems.append(Problem("source.agency", "must not be empty", "missing_agency"))
    for index, identifier in enumerate(event.identifiers):
        path = f"identifiers[{index}]"
        if identifier.scheme not in IDENTIFIER_SCHEMES:
            problems.append(Problem(
                f"{path}.scheme", f"unknown scheme; expected one of {', '.join(IDENTIFIER_SCHEMES)}",
                "unknown_identifier_scheme"))
            continue
        # A sealed value was checked before it was sealed (admission checks the event open);
        # here it is opaque.
        reason = (None if is_sealed(identifier.value)
                  else identifier_problem(identifier.scheme, identifier.value))
        if reason:
            problems.append(Problem(f"{path}.value", reason, "invalid_identifier"))
    if isinstance(event.payload, IdentityNotice):  # the other record's identifier
        other = event.payload
        if other.other_scheme not in IDENTIFIER_SCHEMES:
            problems.append(Problem(
                "payload.other_scheme",
                f"unknown scheme; expected one of {', '.join(IDENTIFIER_SCHEMES)}",
                "unknown_identifier_scheme"))
        elif not is_sealed(other.other_value) and (
                reason := identifier_problem(other.other_scheme, other.other_value)):
            problems.append(Problem("payload.other_value", reason, "invalid_identifier"))
    if not _storable(event):
        for path, text, what in _texts(event):
            reason = text_problem(text)
            if reason:
                problems.append(Problem(path, what + reason, "invalid_character"))
    return problems


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored, or None.

    PostgreSQL's text type cannot hold U+0000, and an unpaired surrogate (which a JSON
    ``\\ud800`` escape produces) has no UTF-8 encoding, so neither fits Avro or PostgreSQL.
    """
    if "\x00" in text:
        return NUL_CHARACTER
    if not text.isascii() and _SURROGATE.search(text):
        return UNPAIRED_SURROGATE
    return None


def _storable(event: AgencyEvent) -> bool:
    """Every string at once (the processor checks every event): the paths only on failure."""
    parts = [event.event_id, event.event_type, event.sensitivity, event.causation_id or ""]
    for record in (event.source, event.payload):
        parts += [v for v in map(record.__getattribute__, _FIELD_NAMES[type(record)])
                  if isinstance(v, str)]
    for identifier in event.identifiers:
        parts += (identifier.scheme, identifier.value)
    parts += event.extra
    parts += event.extra.values()
    return text_problem("".join(parts)) is None


def _texts(event: AgencyEvent) -> Iterator[tuple[str, str, str]]:
    """(path, text, what the reason is about) for every string of the event."""
    yield "event_id", event.event_id, ""
    yield "event_type", event.event_type, ""
    yield "sensitivity", event.sensitivity, ""
    if event.causation_id is not None:
        yield "causation_id", event.causation_id, ""
    yield from _record_texts("source", event.source)
    for index, identifier in enumerate(event.identifiers):
        yield f"identifiers[{index}].scheme", identifier.scheme, ""
        yield f"identifiers[{index}].value", identifier.value, ""
    yield from _record_texts("payload", event.payload)
    for key, value in event.extra.items():
        if text_problem(key):  # a path cannot show this key
            yield "extra", key, "a key "
        else:
            yield f"extra.{key}", value, ""


def _record_texts(path: str, record: object) -> Iterator[tuple[str, str, str]]:
    for name in _FIELD_NAMES[type(record)]:
        value = getattr(record, name)
        if isinstance(value, str):
            yield f"{path}.{name}", value, ""


def message_refusal(event: AgencyEvent, key: bytes | None) -> str | None:
    """Why a message read from Kafka cannot be taken (contract problems, or a message key
    that carries an identifier), or None. Names fields, never values."""
    problems = event_problems(event)
    if problems:
        return "invalid: " + "; ".join(str(p) for p in problems)
    if carries_identifier(event, key):
        return ("refused: the message key carries an identifier value; key by something "
                "that is not personal data (see docs/architecture.md, message keys)")
    return None
