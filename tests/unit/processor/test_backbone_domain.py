"""Referral state machine, caseload and timeline entries: pure folds, any arrival order."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.processor.domain.caseload import apply_caseload_event
from services.processor.domain.referrals import apply_referral_event
from services.processor.domain.timeline import summarise, timeline_entry
from services.processor.read_models import read_models
from tests import factories as f

H = timedelta(hours=1)

LOOP = [
    f.referral("made", at=f.T0, source="PRISON"),
    f.referral("acknowledged", at=f.T0 + H, source="HOUSING"),
    f.referral("accepted", at=f.T0 + 2 * H, source="HOUSING"),
    f.referral("closed", at=f.T0 + 30 * 24 * H, source="HOUSING", outcome="housed"),
]


def _fold_referral(events):  # type: ignore[no-untyped-def]
    state = None
    for event in events:
        state, _ = apply_referral_event(state, event)
    return state


def test_referral_walks_the_closed_loop() -> None:
    statuses = []
    state = None
    for event in LOOP:
        state, change = apply_referral_event(state, event)
        statuses.append(change.status)
    assert statuses == ["requested", "received", "accepted", "completed"]
    assert state is not None
    assert state.status == "completed" and state.outcome == "housed"
    assert state.from_agency == "hmp-leeds" and state.made_at == f.T0


def test_every_arrival_order_gives_the_same_referral_state() -> None:
    expected = _fold_referral(LOOP)
    for order in itertools.permutations(LOOP):
        assert _fold_referral(order) == expected


def test_a_late_acknowledgement_at_the_same_instant_does_not_undo_acceptance() -> None:
    accepted = f.referral("accepted", at=f.T0, source="HOUSING")
    acknowledged = f.referral("acknowledged", at=f.T0, source="HOUSING")
    assert _fold_referral([accepted, acknowledged]).status == "accepted"
    assert _fold_referral([acknowledged, accepted]).status == "accepted"


def test_decline_keeps_reason_and_decider() -> None:
    state = _fold_referral([
        f.referral("made", to="SUBSTANCE_USE", source="MENTAL_HEALTH"),
        f.referral("declined", to="SUBSTANCE_USE", source="SUBSTANCE_USE", at=f.T0 + H,
                   decline_reason="CITES_OTHER_NEED_FIRST", cites_service_kind="MENTAL_HEALTH",
                   decided_by="triage"),
    ])
    assert (state.status, state.decline_reason, state.cites_service_kind, state.decided_by) == (
        "rejected", "CITES_OTHER_NEED_FIRST", "MENTAL_HEALTH", "triage")


def test_caseload_follows_involvement_and_discharge_in_any_order() -> None:
    events = [
        f.contact("attended", at=f.T0, source="SUBSTANCE_USE"),
        f.contact("attended", at=f.T0 + H, source="MENTAL_HEALTH"),
        f.discharge("disengaged", at=f.T0 + 5 * H, source="SUBSTANCE_USE"),
    ]
    results = set()
    for order in itertools.permutations(events):
        caseload: dict = {}
        for event in order:
            apply_caseload_event(caseload, event)
        results.add(tuple(sorted((a, e.active, e.ended_reason) for a, e in caseload.items())))
    assert results == {(("forward-leeds", False, "disengaged"), ("mh-trust-leeds", True, None))}


def test_accepting_a_referral_puts_the_receiving_agency_on_the_caseload() -> None:
    caseload: dict = {}
    changed = apply_caseload_event(caseload, f.referral("accepted", source="HOUSING"))
    assert [(e.agency, e.service_kind, e.active) for e in changed] == [
        ("leeds-housing", "HOUSING", True)]


def test_each_read_model_folds_the_families_it_reads() -> None:
    events = [e.for_person("person-1") for e in [
        *LOOP, f.transition("occurred", "PRISON_RELEASE", reason="RELEASED",
                            accommodation_on_leaving="NO_FIXED_ABODE")]]
    registry = read_models()
    assert registry.names == ("timeline", "identifiers", "referrals", "caseload", "fhir_tasks")
    states: dict = {name: {} for name in registry.names}
    changes = {m.name: m.fold_all(states[m.name], events) for m in registry.models}
    assert len(changes["timeline"]) == len(events)
    assert len(changes["identifiers"]) == len(events)  # one identifier each
    assert states["referrals"]["r-1"].status == "completed"
    assert len(changes["referrals"]) == 4              # the referral's history
    assert set(states["caseload"]["person-1"]) == {"hmp-leeds", "leeds-housing"}
    assert registry["referrals"].concerned(events) == events[:-1]  # a release is not one


def test_a_fold_returns_a_new_state_and_leaves_the_old_one_alone() -> None:
    caseload = read_models()["caseload"]
    [fold] = {caseload.fold_for(e) for e in LOOP}
    assert fold is not None
    before, _ = fold(None, LOOP[0])
    after, changed = fold(before, LOOP[2])  # accepted: the housing service joins
    assert before is not None and after is not None
    assert set(before) == {"hmp-leeds"} and set(after) == {"hmp-leeds", "leeds-housing"}
    assert [e.agency for e in changed] == ["leeds-housing"]


def test_read_model_names_are_unique_and_looked_up_by_name() -> None:
    import pytest

    from services.processor.read_models import Registry

    registry = read_models()
    with pytest.raises(ValueError, match="unique"):
        Registry([*registry.models, registry["timeline"]])
    with pytest.raises(KeyError, match="no read model named 'nothing'"):
        registry["nothing"]
    assert registry.only(["caseload", "timeline"]).names == ("timeline", "caseload")


def test_summaries_hold_no_identifiers() -> None:
    for event in [*LOOP, f.discharge("disengaged"), f.contact("follow_up")]:
        text = summarise(event)
        assert f.NHS not in text and text
    entry = timeline_entry(f.transition("scheduled", "PRISON_RELEASE", reason="RELEASED"))
    assert entry.summary == "Prison release scheduled, reason RELEASED"


@given(st.permutations(range(4)), st.integers(min_value=0, max_value=3))
def test_duplicated_referral_events_change_nothing(order: list[int], dup: int) -> None:
    events = [LOOP[i] for i in order]
    assert _fold_referral([*events, LOOP[dup]]) == _fold_referral(events)
