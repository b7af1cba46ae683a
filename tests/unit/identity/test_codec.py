"""Person-index changes on the wire: every kind round-trips, version 1 messages committed as
bytes stay readable (an edited v1 schema changes its fingerprint and fails here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import Identifier
from services.common.serde.avro import DecodeError, identity_codec
from services.identity.codec import (
    IdentityEvent,
    decode_identity_event,
    encode_identity_event,
    identity_event_from_record,
    identity_event_to_record,
)
from services.identity.domain import (
    Attached,
    Erased,
    Identified,
    Merged,
    PossibleMatch,
    Separated,
)

FIXTURES = Path(__file__).parents[1] / "schemas" / "fixtures"

person_ids = st.uuids().map(str)
identifiers = st.lists(st.builds(Identifier, st.sampled_from(["nhs_number", "crn", "local_id"]),
                                 st.text(min_size=1, max_size=12)), max_size=4).map(tuple)
asserted = st.sampled_from(["rule", "operator", "hmp-leeds"])
changes = st.one_of(
    st.builds(Identified, person_ids, identifiers),
    st.builds(Attached, person_ids, identifiers),
    st.builds(Merged, person_ids, st.lists(person_ids, max_size=3).map(tuple), asserted),
    st.builds(Separated, person_ids, person_ids, identifiers, asserted),
    st.builds(PossibleMatch, st.lists(person_ids, max_size=3).map(tuple), st.text(max_size=40)),
    st.builds(Erased, st.lists(person_ids, max_size=3).map(tuple)),
)
moments = st.integers(min_value=0, max_value=10**11).map(
    lambda ms: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))


@given(person_ids, moments, changes)
def test_every_kind_of_change_round_trips(change_id: str, at: datetime, change: object) -> None:
    event = IdentityEvent(change_id, at, change)  # type: ignore[arg-type]
    data = encode_identity_event(event)
    assert data[2:10] == identity_codec().current.fingerprint
    assert decode_identity_event(data) == event


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("identity_event.v1.*.bin")),
                         ids=lambda p: p.name)
def test_version_1_identity_events_stay_readable(path: Path) -> None:
    event = decode_identity_event(path.read_bytes())
    kind = path.name.split(".")[2]
    assert identity_event_to_record(event)["kind"] == kind
    assert event.at == datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def test_there_is_a_version_1_fixture_per_kind() -> None:
    kinds = {p.name.split(".")[2] for p in FIXTURES.glob("identity_event.v1.*.bin")}
    symbols = identity_codec().versions[0].schema["fields"][1]["type"]["symbols"]
    assert kinds == set(symbols)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("identity_event.v2.*.bin")),
                         ids=lambda p: p.name)
def test_version_2_identity_events_stay_readable(path: Path) -> None:
    event = decode_identity_event(path.read_bytes())
    assert identity_event_to_record(event)["kind"] == path.name.split(".")[2] == "erased"
    assert event.change == Erased(("0b6e8f7c-3d0a-4c1e-9a51-6f2d1b7a9e10",))


def test_an_unknown_kind_is_a_decode_error() -> None:
    record = identity_event_to_record(IdentityEvent(
        "x", datetime(2026, 1, 1, tzinfo=UTC), PossibleMatch((), "r")))
    with pytest.raises(DecodeError):
        identity_event_from_record({**record, "kind": "teleported"})
