"""JSON bodies -> AgencyEvent, or the list of problems (field path, reason, code).

Pure: the caller passes ``now`` and the future tolerance. Reasons never repeat the submitted
value, because values can be personal data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from services.common.events import PAYLOAD_BY_FAMILY, AgencyEvent, Source
from services.common.serde.agency_json import (
    CloudEventBody,
    CloudEventData,
    EventBody,
    IdentifierBody,
    event_from_body,
)
from services.common.validation import (
    UNPAIRED_SURROGATE,
    Problem,
    event_problems,
    text_problem,
)

Parsed = tuple[AgencyEvent | None, list[Problem]]

_AGENCY_SOURCE = re.compile(r"^(?:/agencies/)?(?P<agency>[^/\s]+)$")
_IDENTIFIER_INDEX = re.compile(r"^identifiers\[(?P<index>\d+)\](?P<rest>.*)$")
_DATASCHEMA = re.compile(r"agency_event\.v(?P<version>\d+)(?:\.avsc)?$")
# Where an envelope field lives in a CloudEvent, for error paths the sender recognises.
_CLOUDEVENT_PATHS = {"event_id": "id", "event_type": "type", "occurred_at": "time",
                     "source.agency": "source"}
#: The context attributes joinedup maps; any other top-level member whose name follows the
#: CloudEvents naming rule (lower-case ASCII letters and digits) is an extension attribute.
_CONTEXT_ATTRIBUTES = frozenset(CloudEventBody.model_fields)
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,40}$")
#: Extension attributes are kept in ``extra`` under this prefix, apart from the agency's keys.
EXTENSION_PREFIX = "ce_"
MAX_EXTENSIONS = 20
MAX_EXTENSION_CHARS = 1000
#: Trace context changes with every attempt: kept, but a retry need not repeat it.
_PER_ATTEMPT = frozenset({f"{EXTENSION_PREFIX}traceparent", f"{EXTENSION_PREFIX}tracestate"})


def parse_event(body: Any, now: datetime, future_tolerance: timedelta) -> Parsed:
    """A native JSON event (``application/json``)."""
    try:
        model = EventBody.model_validate(body)
    except ValidationError as exc:
        return None, schema_problems(exc)
    source = model.source
    return _built(model, now, future_tolerance, event_id=model.event_id,
                  event_type=model.event_type, occurred_at=model.occurred_at,
                  recorded_at=model.recorded_at, identifiers=model.identifiers,
                  source=Source(source.agency, source.service_kind, source.system, source.team,
                                source.area))


def parse_cloudevent(body: Any, now: datetime, future_tolerance: timedelta) -> Parsed:
    """A CloudEvents 1.0 event in structured mode (``application/cloudevents+json``), or in
    binary mode once its headers are read into the same shape. Extension attributes
    (``dataref``, ``traceparent``, NHS England's ``filtering`` object...) are kept in
    ``extra``, each under ``ce_<name>``: text as it is, any other JSON value as compact JSON."""
    body, extensions, problems = _extensions(body)
    if problems:
        return None, problems
    try:
        model = CloudEventBody.model_validate(body)
    except ValidationError as exc:
        return None, schema_problems(exc)
    agency = _AGENCY_SOURCE.match(model.source)
    if agency is None:
        problems.append(Problem("source", "must be /agencies/<agency id> or the agency id",
                                "schema_violation"))
    if model.dataschema is not None and not _DATASCHEMA.search(model.dataschema):
        problems.append(Problem("dataschema", "must end with agency_event.v<N>[.avsc]",
                                "schema_violation"))
    if problems:
        return None, problems
    assert agency is not None
    identifiers = list(model.data.identifiers)
    from_subject = False
    if model.subject is not None:
        scheme, _, value = model.subject.rpartition(":")
        try:
            subject = IdentifierBody(scheme=scheme or "nhs_number", value=value)
        except ValidationError:
            return None, [Problem("subject", "must be scheme:value (or an NHS number) with a "
                                             "value of 1-64 characters", "schema_violation")]
        if subject not in identifiers:
            identifiers.insert(0, subject)
            from_subject = True
    if not identifiers:
        return None, [Problem("data.identifiers", "at least one person identifier (or subject) "
                                                  "is required", "schema_violation")]
    detail = model.data.source
    event, problems = _built(
        model.data, now, future_tolerance, event_id=model.id, event_type=model.type,
        occurred_at=model.time, recorded_at=model.data.recorded_at or model.time,
        identifiers=identifiers,
        source=Source(agency["agency"], detail.service_kind, detail.system, detail.team,
                      detail.area), extensions=extensions)
    return event, [dataclasses.replace(p, field=_cloudevent_path(p.field, from_subject))
                   for p in problems]


def content_hash(event: AgencyEvent) -> str:
    """SHA-256 of a canonical JSON of the event: the same fact always hashes the same.

    ``schema_version`` is left out because the gateway always writes the current version.
    """
    canonical = _plain(event)
    canonical.pop("schema_version")
    # Not the agency's content: the person id is filed later, the strongest identifier is
    # derived. Receipts recorded before the identity step hashed the derived key under its
    # old name, so it stays in, as it was, for their hashes to match.
    canonical.pop("person_key")
    canonical.pop("erased")     # set when a sealed event is opened, never by an agency
    canonical.pop("_strongest")
    for key in _PER_ATTEMPT & canonical["extra"].keys():
        del canonical["extra"][key]
    canonical["_person_key"] = event.identifier_key
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_jsonable)
    # surrogatepass: the same bytes as UTF-8 for any valid text, and no UnicodeEncodeError
    # (a 500) should an unpaired surrogate ever get this far; the contract refuses them.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def schema_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False):
        loc = list(item["loc"])
        code = item["type"] if item["type"] in ("unknown_event_type",) else "schema_violation"
        reason = _printable(item["msg"])  # some messages quote a character of the input
        if item["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc.append("family")
            reason = "must be one of: referral, transition, discharge, contact"
        elif item["type"] == "string_unicode":  # pydantic's word for an unpaired surrogate
            reason, code = UNPAIRED_SURROGATE, "invalid_character"
        if loc[-1:] == ["[key]"]:  # a key of `extra`: name the object, never the key
            loc, reason = loc[:-2], f"a key {reason[0].lower()}{reason[1:]}"
        problems.append(Problem(_path(_drop_union_tag(loc)) or "body", reason, code))
    return problems


def _extensions(body: Any) -> tuple[Any, dict[str, str], list[Problem]]:
    """The CloudEvent without its extension attributes, and those as ``extra`` entries.

    A member that breaks the naming rule stays in the body, for the schema to refuse by name;
    a null one is absent (CloudEvents 1.0, 3.1.1)."""
    if not isinstance(body, dict):
        return body, {}, []
    names = [k for k in body if k not in _CONTEXT_ATTRIBUTES and isinstance(k, str)
             and EXTENSION_NAME.match(k)]
    if not names:
        return body, {}, []
    rest = {k: v for k, v in body.items() if k not in names}
    extensions, problems = {}, []
    if len(names) > MAX_EXTENSIONS:
        problems.append(Problem("body", f"has more than {MAX_EXTENSIONS} extension attributes",
                                "schema_violation"))
    for name in names:
        value = body[name]
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(text) > MAX_EXTENSION_CHARS:
            problems.append(Problem(name, f"is longer than {MAX_EXTENSION_CHARS} characters",
                                    "schema_violation"))
        extensions[f"{EXTENSION_PREFIX}{name}"] = text
    return rest, extensions, problems


def _built(body: EventBody | CloudEventData, now: datetime, future_tolerance: timedelta,
           extensions: dict[str, str] | None = None, **envelope: Any) -> Parsed:
    """The event from the checked body, then the checks every event meets (the same ones a
    message published straight to Kafka meets in the processor)."""
    family = envelope["event_type"].split(".", 1)[0]
    if body.payload.family != family:
        return None, [Problem("payload.family", f"must be {family} for a {family} event",
                              "payload_mismatch")]
    event = event_from_body(body, **envelope)
    if extensions:
        if clash := sorted(extensions.keys() & event.extra.keys()):
            # The path maps to the attribute's name (``_cloudevent_path``).
            return None, [Problem(f"extra.{clash[0]}", f"is also a key of data.extra "
                                  f"({clash[0]}); keep one", "duplicate_attribute")]
        event = dataclasses.replace(event, extra={**event.extra, **extensions})
    problems = event_problems(event, now, future_tolerance)
    return (None, problems) if problems else (event, [])


def _drop_union_tag(loc: list[Any]) -> list[Any]:
    # pydantic reports discriminated-union errors as payload.<tag>.<field>; callers know no tag.
    for i in range(len(loc) - 1):
        if loc[i] == "payload" and loc[i + 1] in PAYLOAD_BY_FAMILY:
            return loc[:i + 1] + loc[i + 2:]
    return loc


def _path(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, str) and (text_problem(part) or "\ufffd" in part):
            part = "*"  # an unknown field name that cannot be shown (U+FFFD: pydantic's stand-in)
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _printable(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _cloudevent_path(field: str, from_subject: bool) -> str:
    if field in _CLOUDEVENT_PATHS:
        return _CLOUDEVENT_PATHS[field]
    if field.startswith(f"extra.{EXTENSION_PREFIX}"):  # an extension attribute's value
        return field.removeprefix(f"extra.{EXTENSION_PREFIX}")
    index = _IDENTIFIER_INDEX.match(field)
    if index and from_subject:  # identifiers[0] came from `subject`; the rest shift by one
        position = int(index["index"])
        return "subject" if position == 0 else f"data.identifiers[{position - 1}]{index['rest']}"
    return f"data.{field}"


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` gives, without its deep copies."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value).__name__)
