"""CloudEvents HTTP binding, binary content mode: the context attributes travel as ``ce-*``
headers (percent-encoded), ``Content-Type`` is the ``datacontenttype`` and the body is the
event's ``data``.

The headers are read by the CloudEvents SDK's HTTP binding (percent-decoding, the naming rule,
the required attributes), then the event takes the structured-mode path, so the three modes
meet one set of checks. The body is read by the gateway (size limit, hardened JSON), not by
the SDK's reader, which has no limits on numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.exceptions import CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from services.common.validation import Problem
from services.ingest.domain.parsing import Parsed, parse_cloudevent
from services.ingest.entrypoints.body import RequestRefused

PREFIX = "ce-"
_TITLE = "Unprocessable event"


def is_binary(headers: Mapping[str, str]) -> bool:
    """A request with any ``ce-`` header is in binary mode (CloudEvents HTTP binding 3.1)."""
    return any(name.lower().startswith(PREFIX) for name in headers)


def structured(headers: Mapping[str, str], media_type: str, data: Any) -> dict[str, Any]:
    """The event in its structured form: the attributes the headers name, with ``data``.

    Only attributes that were sent are kept: the SDK makes up an ``id`` and a ``time`` when
    they are missing, and an event without an id of its own has no idempotency key."""
    sent = {name.lower(): value for name, value in headers.items()
            if name.lower().startswith(PREFIX)}
    message = HTTPMessage({**sent, "content-type": media_type}, b"")
    try:
        event = from_binary(message, JSONFormat(), CloudEvent)
    except CloudEventValidationError as exc:  # reasons by attribute name, never the value
        raise RequestRefused(422, _TITLE, [
            Problem(f"{PREFIX}{name}", "is missing or not valid in CloudEvents 1.0",
                    "schema_violation") for name in sorted(exc.errors)]) from None
    except (ValueError, OverflowError):  # the SDK parses ce-time on its own
        raise RequestRefused(422, _TITLE, [Problem(
            f"{PREFIX}time", "must be an RFC 3339 time with an offset",
            "schema_violation")]) from None
    names = {name[len(PREFIX):] for name in sent} | {"datacontenttype"}
    attributes = {name: _text(value) for name, value in event.get_attributes().items()
                  if name in names}
    if "time" in attributes:  # the text sent, for the same time checks as structured mode
        attributes["time"] = unquote(sent[f"{PREFIX}time"])
    return {**attributes, "data": data}


def parse_binary(body: Any, now: datetime, future_tolerance: timedelta) -> Parsed:
    """``parse_cloudevent``, with problems named where the sender put them: a header
    (``ce-id``, ``content-type``) or a path in the body."""
    event, problems = parse_cloudevent(body, now, future_tolerance)
    return event, [dataclasses.replace(p, field=_where(p.field)) for p in problems]


def _where(field: str) -> str:
    if field == "data":
        return "body"
    if field.startswith("data."):
        return field.removeprefix("data.")
    if field == "datacontenttype":
        return "content-type"
    return f"{PREFIX}{field}" if field != "body" else field


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
