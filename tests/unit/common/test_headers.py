"""Message headers: what a message holds, readable without decoding it, and nothing personal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.serde.agency_event import encode_event
from services.common.serde.avro import agency_codec
from services.common.serde.headers import (
    agency_event_headers,
    carried,
    valid_traceparent,
)
from tests import factories as f

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_content_type_names_the_writer_schema_and_its_fingerprint() -> None:
    event = f.referral("declined", decline_reason="CAPACITY")
    headers = dict(agency_event_headers(event, TRACE))
    fingerprint = encode_event(event)[2:10]  # what single-object encoding carries
    assert headers["content-type"].decode() == (
        f"application/avro; schema=joinedup.AgencyEvent; "
        f"version={agency_codec().current.version}; fingerprint={fingerprint.hex()}")
    assert headers["ce_type"] == b"referral.declined"
    assert headers["traceparent"] == TRACE.encode()


def test_no_header_carries_an_identifier() -> None:
    event = f.contact("attended")
    text = b" ".join(v for _, v in agency_event_headers(event, TRACE))
    assert f.NHS.encode() not in text and event.identifier_key.encode() not in text


@given(st.text(max_size=80))
def test_only_a_well_formed_trace_context_is_passed_on(value: str) -> None:
    kept = valid_traceparent(value)
    assert kept is None or (len(kept) == 55 and kept.count("-") == 3)
    event = f.contact("attended")
    names = [k for k, _ in agency_event_headers(event, value)]
    assert ("traceparent" in names) == (kept is not None)


def test_trace_context_rules() -> None:
    assert valid_traceparent(TRACE.upper()) == TRACE  # case folded
    assert valid_traceparent("ff" + TRACE[2:]) is None  # version ff is invalid
    assert valid_traceparent(TRACE + "-extra") is None
    assert valid_traceparent(None) is None


def test_forwarding_keeps_what_the_message_is_and_drops_the_rest() -> None:
    original = [("content-type", b"x"), ("ce_type", b"contact.attended"),
                ("traceparent", TRACE.encode()), ("something-else", b"y")]
    assert carried(original) == original[:3]
