"""Governance events on the wire: every type round-trips, version 1 messages committed as
bytes stay readable, and a payload that does not match its type is a decode error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.serde.avro import DecodeError, governance_codec
from services.common.serde.governance_event import (
    decode_governance_event,
    encode_governance_event,
    governance_event_from_record,
    governance_event_to_record,
)
from services.reads.domain.governance import EVENT_TYPE
from tests.unit.reads.governance_samples import PAYLOADS, sample

FIXTURES = Path(__file__).parents[1] / "schemas" / "fixtures"


@given(st.sampled_from(sorted(PAYLOADS)), st.integers(min_value=1, max_value=10**6))
def test_every_type_round_trips(event_type: str, n: int) -> None:
    event = sample(event_type, n)
    data = encode_governance_event(event)
    assert data[2:10] == governance_codec().current.fingerprint
    assert decode_governance_event(data) == event


def test_sets_encode_in_one_order_so_an_event_has_one_encoding() -> None:
    record = governance_event_to_record(sample("agreement.made"))
    assert record["payload"][1]["agencies"] == ["hmp-leeds", "leeds-housing"]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("governance_event.v1.*.bin")),
                         ids=lambda p: p.name)
def test_version_1_governance_events_stay_readable(path: Path) -> None:
    event = decode_governance_event(path.read_bytes())
    assert event.event_type.replace(".", "_") == path.name.split(".")[2]
    assert event == sample(event.event_type, event.recorded_at.minute - 30)


def test_there_is_a_version_1_fixture_per_type() -> None:
    found = {p.name.split(".")[2] for p in FIXTURES.glob("governance_event.v1.*.bin")}
    assert found == {t.replace(".", "_") for t in EVENT_TYPE.values()}


def test_a_payload_that_does_not_match_its_type_is_a_decode_error() -> None:
    record = governance_event_to_record(sample("consent.given"))
    with pytest.raises(DecodeError, match="do not match"):
        governance_event_from_record({**record, "event_type": "consent.withdrawn"})
