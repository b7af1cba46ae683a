"""Leaving care without a pathway referral; hospital discharge to no fixed abode."""

from __future__ import annotations

import pytest

from tests.unit.processor.rules.helpers import AREA, T0, D, H, M, Person, referral, transition

CARE = "leaving-care-pathway-referral"
NFA = "hospital-discharge-nfa-housing-referral"


def left_care(**kw: object):  # type: ignore[no-untyped-def]
    return transition("occurred", "LEAVING_CARE", T0, by="SOCIAL_CARE", **kw)


def test_leaving_care_without_a_referral_raises_at_28_days() -> None:
    person = Person()
    person.apply(left_care())
    [alert] = person.tick(T0 + 29 * D)
    assert (alert.rule_id, alert.at) == (CARE, T0 + 28 * D)
    assert alert.duty_team == f"leaving-care:{AREA}" and "2017" in alert.source_reference


@pytest.mark.parametrize(("made_at", "to", "raised"), [
    (T0 + 28 * D - M, "SOCIAL_CARE", 0), (T0 + 28 * D + M, "SOCIAL_CARE", 1),
    (T0 - 300 * D, "LEAVING_CARE", 0), (T0 - 366 * D, "LEAVING_CARE", 1),
    (T0 + D, "HOUSING", 1),
])
def test_leaving_care_referral_window_lookback_and_service(made_at, to, raised) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    events = [left_care(), referral("made", to, made_at, by="SOCIAL_CARE")]
    person.apply(*sorted(events, key=lambda e: e.recorded_at))
    person.tick(T0 + 60 * D)
    assert len(person.of(CARE, "raised")) == raised


def test_leaving_care_late_referral_resolves_and_cancellation_withdraws() -> None:
    person = Person()
    person.apply(left_care())
    person.tick(T0 + 30 * D)
    person.apply(referral("made", "LEAVING_CARE", T0 + 31 * D, by="SOCIAL_CARE"))
    assert [a.action for a in person.of(CARE)] == ["raised", "resolved"]
    cancelled = Person()
    cancelled.apply(left_care(), transition("cancelled", "LEAVING_CARE", T0 + D, by="SOCIAL_CARE"))
    cancelled.tick(T0 + 60 * D)
    assert cancelled.of(CARE) == []


def hospital(kind: str = "HOSPITAL_DISCHARGE", accommodation: str = "NO_FIXED_ABODE",
             **kw: object):  # type: ignore[no-untyped-def]
    return transition("occurred", kind, T0, accommodation=accommodation, by="ACUTE_HOSPITAL",
                      **kw)


@pytest.mark.parametrize(("kind", "accommodation", "raised"), [
    ("HOSPITAL_DISCHARGE", "NO_FIXED_ABODE", 1), ("MENTAL_HEALTH_DISCHARGE", "ROUGH_SLEEPING", 1),
    ("HOSPITAL_DISCHARGE", "SETTLED", 0), ("HOSPITAL_DISCHARGE", "TEMPORARY", 0),
    ("HOSPITAL_ADMISSION", "NO_FIXED_ABODE", 0),
])
def test_discharge_to_no_fixed_abode_needs_a_housing_referral(kind, accommodation, raised) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(hospital(kind, accommodation))
    person.tick(T0 + 25 * H)
    assert len(person.of(NFA, "raised")) == raised
    if raised:
        [alert] = person.of(NFA)
        assert alert.at == T0 + 24 * H and alert.duty_team == f"housing:{AREA}"


@pytest.mark.parametrize(("made_at", "raised"), [
    (T0 + 23 * H + 59 * M, 0), (T0 + 24 * H + M, 1), (T0 - 27 * D, 0), (T0 - 29 * D, 1),
])
def test_hospital_housing_referral_boundary_and_lookback(made_at, raised) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    events = [hospital(), referral("made", "HOUSING", made_at, by="ACUTE_HOSPITAL")]
    person.apply(*sorted(events, key=lambda e: e.recorded_at))
    person.tick(T0 + 10 * D)
    assert len(person.of(NFA, "raised")) == raised


def test_hospital_referral_recorded_before_the_discharge_and_a_duplicate_discharge() -> None:
    person = Person()
    trigger = hospital(delay=5 * H)
    person.apply(referral("made", "HOUSING", T0 + 2 * H, by="ACUTE_HOSPITAL"), trigger, trigger)
    person.tick(T0 + 10 * D)
    assert person.of(NFA) == [] and len(person.expectations(NFA)) == 1


def test_hospital_late_referral_resolves_the_alert() -> None:
    person = Person()
    person.apply(hospital())
    person.tick(T0 + 2 * D)
    person.apply(referral("made", "HOUSING", T0 + 3 * D, by="ACUTE_HOSPITAL"))
    [resolved] = person.of(NFA, "resolved")
    assert resolved.resolution is not None and "48 hours after the deadline" in resolved.resolution
