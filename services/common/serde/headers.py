"""Kafka message headers: what a message is, readable without decoding its value.

* ``content-type``: the media type with the writer schema (its name, version and the
  CRC-64-AVRO fingerprint that the single-object encoding carries in its first bytes), so a
  tool that reads headers knows what it holds;
* ``ce_specversion``, ``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``: the CloudEvents
  Kafka protocol binding in binary content mode (the value is the event's data, described by
  ``content-type``), so a CloudEvents-aware consumer reads an agency event without decoding
  it. There is no ``ce_subject``: the subject is a person, and the key already routes by a
  keyed hash of them;
  Alert and governance events carry them too (``cloudevent_headers``: source
  ``/joinedup/alerts`` or ``/joinedup/governance``, type ``alert.<action>`` or the governance
  event's type);
* ``traceparent``: the W3C trace context of the request that published it, when there was
  one (a malformed one is dropped, not passed on).

No header carries personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Final

from services.common.events import AgencyEvent
from services.common.serde.avro import AvroCodec, agency_codec, identity_codec

CONTENT_TYPE: Final = "content-type"
EVENT_TYPE: Final = "ce_type"
SPECVERSION: Final = "ce_specversion"
EVENT_ID: Final = "ce_id"
SOURCE: Final = "ce_source"
TIME: Final = "ce_time"
TRACEPARENT: Final = "traceparent"
#: headers a message keeps when admission forwards it to the person-events topic
CARRIED: Final = (CONTENT_TYPE, SPECVERSION, EVENT_ID, SOURCE, EVENT_TYPE, TIME, TRACEPARENT)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

Headers = list[tuple[str, bytes]]


def content_type(codec: AvroCodec) -> str:
    schema = codec.current
    return (f"application/avro; schema=joinedup.{schema.schema['name'].split('.')[-1]}; "
            f"version={schema.version}; fingerprint={schema.fingerprint.hex()}")


@cache
def _agency_content_type() -> bytes:
    return content_type(agency_codec()).encode()


def identity_event_headers(kind: str, change_id: str, at: datetime) -> Headers:
    """An identity change forwarded onto the person-events topic (``identity.merged``...)."""
    return cloudevent_headers(identity_codec(), change_id, "/joinedup/identity",
                              f"identity.{kind}", at)


def valid_traceparent(value: str | None) -> str | None:
    """The trace context if it is well formed (W3C Trace Context), else None."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if _TRACEPARENT.match(value) and not value.startswith("ff") else None


def agency_event_headers(event: AgencyEvent, traceparent: str | None = None) -> Headers:
    headers = [(CONTENT_TYPE, _agency_content_type()), (SPECVERSION, b"1.0"),
               (EVENT_ID, event.event_id.encode()),
               (SOURCE, f"/agencies/{event.source.agency}".encode()),
               (EVENT_TYPE, event.event_type.encode()),
               (TIME, _rfc3339(event.occurred_at).encode())]
    if (trace := valid_traceparent(traceparent)) is not None:
        headers.append((TRACEPARENT, trace.encode()))
    return headers


def cloudevent_headers(codec: AvroCodec, event_id: str, source: str, event_type: str,
                       time: datetime) -> Headers:
    """The binding headers of an event joinedup itself writes (alerts, governance)."""
    return [(CONTENT_TYPE, content_type(codec).encode()), (SPECVERSION, b"1.0"),
            (EVENT_ID, event_id.encode()), (SOURCE, source.encode()),
            (EVENT_TYPE, event_type.encode()), (TIME, _rfc3339(time).encode())]


def _rfc3339(moment: datetime) -> str:
    # The form CloudEvents writes (RFC 3339, "Z" for UTC); the log holds milliseconds.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def carried(headers: Iterable[tuple[str, bytes]]) -> Headers:
    """The headers a forwarded message keeps from the original."""
    return [(k, v) for k, v in headers if k in CARRIED]
