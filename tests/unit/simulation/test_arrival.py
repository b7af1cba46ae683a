"""shuffle_across_agencies: agencies' streams interleave; each agency's own order holds."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.events import AgencyEvent
from services.simulation import shuffle_across_agencies, simulate

# Built once for the module (hypothesis examples cannot take function-scoped fixtures).
EVENTS: list[AgencyEvent] = simulate(seed=12, people=60, months=3,
                                     start=datetime(2026, 2, 2, tzinfo=UTC))


def per_agency(events: list[AgencyEvent]) -> dict[str, list[str]]:
    streams: dict[str, list[str]] = defaultdict(list)
    for event in events:
        streams[event.source.agency].append(event.event_id)
    return streams


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_each_agency_keeps_its_own_order(seed: int) -> None:
    shuffled = shuffle_across_agencies(EVENTS, random.Random(seed))
    assert sorted(e.event_id for e in shuffled) == sorted(e.event_id for e in EVENTS)
    assert per_agency(shuffled) == per_agency(EVENTS)


def test_the_agencies_interleave_differently() -> None:
    shuffled = shuffle_across_agencies(EVENTS, random.Random(1))
    assert len(EVENTS) > 300
    assert [e.event_id for e in shuffled] != [e.event_id for e in EVENTS]
    # Some person now sees a later-recorded event first: out-of-order arrival to test against.
    assert any(a.identifier_key == b.identifier_key and a.recorded_at > b.recorded_at
               for a, b in zip(shuffled, shuffled[1:], strict=False))


def test_same_rng_seed_same_interleaving_and_input_untouched() -> None:
    before = list(EVENTS)
    first = shuffle_across_agencies(EVENTS, random.Random(7))
    second = shuffle_across_agencies(EVENTS, random.Random(7))
    assert first == second
    assert before == EVENTS
    assert shuffle_across_agencies([], random.Random(7)) == []
