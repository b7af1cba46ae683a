"""Dead-letter reasons as metric label codes: a fixed vocabulary, nothing a publisher wrote."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.processor.reason_codes import CODES, reason_code


def test_the_reasons_joinedup_writes_have_their_codes() -> None:
    assert reason_code("undecodable: empty message (tombstone)") == "empty_message"
    assert reason_code("undecodable: unknown event type 'x.y'") == "undecodable"
    assert reason_code("undecodable: not Avro single-object encoding") == "undecodable"
    assert reason_code("invalid: payload.kind: not a known kind") == "invalid"
    assert reason_code("processing failed: KeyError") == "processing_failed"
    assert reason_code("refused: not an agency topic") == "not_agency_topic"
    assert reason_code("refused: source.agency is not the agency that owns the topic it "
                       "came on") == "wrong_agency"
    assert reason_code("refused: the agency is not registered to publish (or is "
                       "disabled)") == "agency_not_registered"
    assert reason_code("refused: the message key carries an identifier value; key by "
                       "something else") == "identifier_in_key"
    assert reason_code("refused: this agency already published a different event with "
                       "this event id (event ids identify one event per agency)"
                       ) == "event_id_clash"
    assert reason_code("refused: its transit seal does not open with its key"
                       ) == "seal_refused"
    assert reason_code("refused: something new") == "refused"
    assert reason_code("a reason nobody wrote yet") == "other"


@given(st.text())
def test_any_reason_maps_into_the_vocabulary(reason: str) -> None:
    assert reason_code(reason) in CODES
