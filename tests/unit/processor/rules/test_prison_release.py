"""Duty to refer 56 days before release; no settled accommodation; 21-day treatment."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.unit.processor.rules.helpers import AREA, T0, D, H, M, Person, contact, referral, transition

REFER = "prison-release-duty-to-refer"
HOMELESS = "prison-release-no-settled-accommodation"
TREAT = "release-substance-treatment-21d"
RELEASE_DAY = date(2026, 7, 1)
# End of 6 May 2026 (56 days before 1 July), UK time: midnight BST is 23:00 UTC.
DUE = datetime(2026, 5, 6, 23, 0, tzinfo=UTC)


def scheduled(on: date = RELEASE_DAY, at: datetime = T0, **kw: object):  # type: ignore[no-untyped-def]
    return transition("scheduled", "PRISON_RELEASE", at, scheduled_for=on, **kw)


def released(at: datetime = T0, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("reason", "RELEASED")
    return transition("occurred", "PRISON_RELEASE", at, **kw)


def test_no_housing_referral_56_days_before_release_raises_at_the_deadline() -> None:
    person = Person()
    trigger = scheduled()
    person.apply(trigger)
    assert person.tick(DUE) == []
    [alert] = person.tick(DUE + M)
    assert (alert.rule_id, alert.at, alert.due_at) == (REFER, DUE, DUE)
    assert alert.duty_team == f"housing:{AREA}" and "213B" in alert.source_reference
    assert alert.trigger_event_id == trigger.event_id and alert.window_start == T0


@pytest.mark.parametrize(("made_at", "raised"), [
    (DUE - M, 0), (DUE, 0), (DUE + M, 1),
])
def test_56_day_boundary(made_at, raised) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(scheduled(), referral("made", "HOUSING", made_at))
    person.tick(DUE + 90 * D)
    assert len(person.of(REFER, "raised")) == raised
    assert len(person.of(REFER, "resolved")) == raised  # a late referral still resolves it


@pytest.mark.parametrize(("days_before", "counts"), [(179, True), (181, False)])
def test_a_housing_referral_up_to_180_days_before_counts(days_before, counts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(referral("made", "HOUSING", T0 - days_before * D), scheduled())
    person.tick(DUE + D)
    assert (person.of(REFER) == []) is counts


def test_a_referral_to_another_kind_of_service_does_not_count() -> None:
    person = Person()
    person.apply(scheduled(), referral("made", "SUBSTANCE_USE", T0 + D))
    person.tick(DUE + D)
    assert len(person.of(REFER, "raised")) == 1


@pytest.mark.parametrize("reason", ["TEMPORARY_ABSENCE_RELEASE", "SENT_TO_COURT", "TRANSFERRED",
                                    "RELEASED_TO_HOSPITAL"])
def test_movements_that_are_not_releases_never_open_the_duty(reason) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(scheduled(reason=reason))
    person.tick(DUE + D)
    assert person.expectations(REFER) == [] and person.alerts == []


def test_release_scheduled_less_than_56_days_ahead_alerts_when_recorded() -> None:
    person = Person()
    person.apply(scheduled(on=date(2026, 3, 20)))
    [alert] = person.of(REFER, "raised")
    assert alert.at == T0 and alert.due_at == datetime(2026, 1, 24, 0, 0, tzinfo=UTC)  # end of 23 Jan


def test_rescheduling_moves_the_deadline_and_keeps_the_alert_id() -> None:
    person = Person()
    first = scheduled()
    person.apply(first, scheduled(on=date(2026, 9, 1), at=T0 + 10 * D))
    assert person.tick(DUE + D) == []
    new_due = datetime(2026, 7, 7, 23, 0, tzinfo=UTC)  # end of 7 July BST, 56 days before
    [alert] = person.tick(new_due + M)
    assert alert.due_at == new_due and alert.at == new_due
    assert alert.trigger_event_id == first.event_id  # the moved expectation, same id


def test_rescheduling_after_the_alert_resolves_it_and_opens_a_new_one() -> None:
    person = Person()
    person.apply(scheduled())
    person.tick(DUE + M)
    later = scheduled(on=date(2026, 12, 1), at=DUE + D)
    person.apply(later)
    [resolved] = person.of(REFER, "resolved")
    assert resolved.resolution is not None and resolved.resolution.startswith("deadline moved")
    [old, new] = sorted(person.expectations(REFER), key=lambda e: e.window_start)
    assert (old.status, new.status, new.trigger_event_id) == ("withdrawn", "open", later.event_id)
    person.apply(referral("made", "HOUSING", DUE + 2 * D))
    assert new.expectation_id not in {a.alert_id for a in person.alerts}
    assert person.expectations(REFER)[1].status == "fulfilled"


def test_rescheduling_earlier_past_the_deadline_alerts_at_the_rescheduling() -> None:
    person = Person()
    person.apply(scheduled(), scheduled(on=date(2026, 4, 1), at=T0 + 2 * D))
    [alert] = person.of(REFER, "raised")
    assert alert.at == T0 + 2 * D


def test_an_older_schedule_arriving_late_does_not_move_the_deadline_back() -> None:
    person = Person()
    newer = scheduled(on=date(2026, 9, 1), at=T0 + 10 * D)
    older = scheduled(at=T0, delay=20 * D)
    person.apply(newer, older)
    [expectation] = person.expectations(REFER)
    assert expectation.trigger_event_id == newer.event_id
    assert expectation.due_at == datetime(2026, 7, 7, 23, 0, tzinfo=UTC)


def test_cancelled_release_withdraws_the_duty_and_a_raised_alert() -> None:
    person = Person()
    person.apply(scheduled(), transition("cancelled", "PRISON_RELEASE", T0 + D))
    person.tick(DUE + D)
    assert person.alerts == [] and person.expectations(REFER)[0].status == "withdrawn"

    late = Person()
    late.apply(scheduled())
    late.tick(DUE + M)
    late.apply(transition("cancelled", "PRISON_RELEASE", DUE + D))
    assert [a.action for a in late.of(REFER)] == ["raised", "resolved"]


def test_cancellation_that_arrives_before_its_schedule_is_honoured() -> None:
    person = Person()
    person.apply(transition("cancelled", "PRISON_RELEASE", T0 + D, delay=H),
                 scheduled(at=T0, delay=2 * D))
    person.tick(DUE + D)
    assert person.alerts == [] and person.expectations(REFER)[0].status == "withdrawn"


def test_scheduled_again_after_a_cancellation_opens_a_new_duty() -> None:
    person = Person()
    person.apply(scheduled(), transition("cancelled", "PRISON_RELEASE", T0 + D),
                 scheduled(on=date(2026, 8, 1), at=T0 + 5 * D))
    person.tick(datetime(2026, 6, 7, tzinfo=UTC))
    assert len(person.of(REFER, "raised")) == 1


def test_duplicated_schedule_changes_nothing() -> None:
    person = Person()
    trigger = scheduled()
    person.apply(trigger, trigger)
    assert len(person.expectations(REFER)) == 1
    assert person.outcomes[-1].changed_expectations == []


@pytest.mark.parametrize(("accommodation", "alerts"), [
    ("NO_FIXED_ABODE", 1), ("ROUGH_SLEEPING", 1), ("UNKNOWN", 1), (None, 1),
    ("SETTLED", 0), ("TEMPORARY", 0), ("APPROVED_PREMISES", 0), ("SUPPORTED_HOUSING", 0),
])
def test_release_without_settled_accommodation_alerts_at_once(accommodation, alerts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    trigger = released(accommodation=accommodation, delay=2 * H)
    person.apply(trigger)
    raised = person.of(HOMELESS, "raised")
    assert len(raised) == alerts
    if alerts:
        [alert] = raised
        assert (alert.at, alert.window_start, alert.due_at) == (T0 + 2 * H, T0, None)
        assert alert.duty_team == f"housing:{AREA}" and alert.trigger_event_id == trigger.event_id


@pytest.mark.parametrize("reason", ["TEMPORARY_ABSENCE_RELEASE", "SENT_TO_COURT", "TRANSFERRED",
                                    "RELEASED_TO_HOSPITAL", None])
def test_only_a_real_release_alerts(reason) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(released(reason=reason, accommodation="NO_FIXED_ABODE", treated=True))
    person.tick(T0 + 60 * D)
    assert person.alerts == []


def test_immediate_alert_is_raised_once_for_a_duplicated_release() -> None:
    person = Person()
    trigger = released(accommodation="ROUGH_SLEEPING")
    person.apply(trigger, trigger)
    assert len(person.of(HOMELESS)) == 1


def test_a_scheduled_release_to_no_fixed_abode_is_not_yet_an_immediate_alert() -> None:
    person = Person()
    person.apply(scheduled(accommodation="NO_FIXED_ABODE"))
    assert person.of(HOMELESS) == []


@pytest.mark.parametrize(("after", "raised"), [
    (20 * D + 23 * H + 59 * M, 0), (21 * D, 0), (21 * D + M, 1),
])
def test_treatment_within_21_days_boundary(after, raised) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(released(accommodation="SETTLED", treated=True),
                 contact("attended", T0 + after, by="SUBSTANCE_USE"))
    person.tick(T0 + 60 * D)
    assert len(person.of(TREAT, "raised")) == raised


def test_no_treatment_appointment_raises_and_a_late_one_resolves() -> None:
    person = Person()
    person.apply(released(accommodation="SETTLED", treated=True))
    [alert] = person.tick(T0 + 22 * D)
    assert alert.at == T0 + 21 * D and alert.duty_team == f"substance-use:{AREA}"
    assert "C19c" in alert.source_reference
    person.apply(contact("attended", T0 + 25 * D, by="SUBSTANCE_USE"))
    [resolved] = person.of(TREAT, "resolved")
    assert resolved.resolution is not None and "4.0 days after the deadline" in resolved.resolution


@pytest.mark.parametrize("treated", [False, None])
def test_no_expectation_without_custody_treatment(treated) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(released(accommodation="SETTLED", treated=treated))
    assert person.expectations(TREAT) == []


def test_treatment_contact_recorded_before_the_release_event_counts() -> None:
    person = Person()
    person.apply(contact("attended", T0 + 3 * D, by="SUBSTANCE_USE"),
                 released(accommodation="SETTLED", treated=True, delay=4 * D))
    person.tick(T0 + 60 * D)
    assert person.of(TREAT) == [] and person.expectations(TREAT)[0].status == "fulfilled"


def test_missed_or_other_service_contacts_do_not_count_and_cancellation_withdraws() -> None:
    person = Person()
    person.apply(released(accommodation="SETTLED", treated=True),
                 contact("missed", T0 + D, by="SUBSTANCE_USE"),
                 contact("attended", T0 + 2 * D, by="MENTAL_HEALTH"))
    person.tick(T0 + 22 * D)
    assert len(person.of(TREAT, "raised")) == 1

    cancelled = Person()
    cancelled.apply(released(accommodation="SETTLED", treated=True),
                    transition("cancelled", "PRISON_RELEASE", T0 + H))
    cancelled.tick(T0 + 22 * D)
    assert cancelled.of(TREAT) == []
