"""Working-day deadlines (England and Wales) and the referral answer-time SLA rule."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.processor.domain.rules.calendar import add_working_days, is_working_day
from tests.unit.processor.rules.helpers import D, H, M, Person, referral

SLA = "referral-answer-sla"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("start", "n", "due"), [
    # Monday 2 March (GMT): 5 working days -> end of Monday 9 March
    (utc(2026, 3, 2, 9), 5, utc(2026, 3, 10, 0)),
    # Thursday before Easter 2026 (Good Friday 3 Apr, Easter Monday 6 Apr): end of Mon 13 Apr BST
    (utc(2026, 4, 2, 9), 5, utc(2026, 4, 13, 23)),
    (utc(2026, 4, 2, 9), 1, utc(2026, 4, 7, 23)),
    # Christmas Eve 2026: 25, 26 (Sat), Boxing Day observed Mon 28, New Year's Day skipped
    (utc(2026, 12, 24, 10), 5, utc(2027, 1, 6, 0)),
    # made on a Saturday: Monday is the first working day
    (utc(2026, 3, 7, 12), 1, utc(2026, 3, 10, 0)),
    # across the clocks going forward (29 March 2026): Friday -> end of Monday, now BST
    (utc(2026, 3, 27, 12), 1, utc(2026, 3, 30, 23)),
    # 23:30 UTC on 1 June is already 2 June in the UK: the count starts from 2 June
    (utc(2026, 6, 1, 23, 30), 1, utc(2026, 6, 3, 23)),
    (utc(2026, 3, 2, 9), 0, utc(2026, 3, 3, 0)),
])
def test_add_working_days(start, n, due) -> None:  # type: ignore[no-untyped-def]
    assert add_working_days(start, n) == due


def test_bank_holidays_and_weekends_are_not_working_days() -> None:
    for day in (date(2026, 4, 3), date(2026, 4, 6), date(2026, 12, 28), date(2026, 8, 31),
                date(2026, 3, 7), date(2026, 3, 8)):
        assert not is_working_day(day)
    assert is_working_day(date(2026, 4, 7))


EASTER_DUE = utc(2026, 4, 13, 23)


def made(at: datetime = utc(2026, 4, 2, 9), **kw: object):  # type: ignore[no-untyped-def]
    return referral("made", "HOUSING", at, **kw)


def test_unanswered_referral_raises_at_the_end_of_the_fifth_working_day_over_easter() -> None:
    person = Person()
    trigger = made()
    person.apply(trigger)
    assert person.tick(EASTER_DUE) == []
    [alert] = person.tick(EASTER_DUE + M)
    assert (alert.rule_id, alert.at, alert.due_at) == (SLA, EASTER_DUE, EASTER_DUE)
    assert alert.duty_team == "hmp-leeds:duty"  # the referring team chases
    assert "working days" in alert.explanation


@pytest.mark.parametrize(("answer_at", "raised"), [
    (EASTER_DUE - M, 0), (EASTER_DUE, 0), (EASTER_DUE + M, 1),
])
def test_working_day_boundary(answer_at, raised) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(made(), referral("acknowledged", "HOUSING", answer_at, by="HOUSING"))
    person.tick(EASTER_DUE + 30 * D)
    assert len(person.of(SLA, "raised")) == raised


@pytest.mark.parametrize("answer", ["acknowledged", "accepted", "declined"])
def test_any_answer_for_the_same_referral_meets_it(answer) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(made(), referral(answer, "HOUSING", utc(2026, 4, 8, 9), by="HOUSING"))
    person.tick(EASTER_DUE + D)
    assert person.of(SLA) == []


def test_an_answer_to_another_referral_does_not_count() -> None:
    person = Person()
    person.apply(made(rid="r-1"),
                 referral("accepted", "HOUSING", utc(2026, 4, 8, 9), rid="r-2", by="HOUSING"))
    person.tick(EASTER_DUE + D)
    assert [a.action for a in person.of(SLA)] == ["raised"]
    assert {e.status for e in person.expectations(SLA)} == {"alerted"}


def test_the_referral_may_ask_for_its_own_number_of_working_days() -> None:
    person = Person()
    person.apply(made(sla=2))
    [alert] = person.tick(EASTER_DUE)
    assert alert.due_at == utc(2026, 4, 8, 23)  # Tue 7 and Wed 8 April


def test_answer_recorded_before_the_referral_arrives_is_honoured() -> None:
    person = Person()
    answer = referral("acknowledged", "HOUSING", utc(2026, 4, 2, 10), by="HOUSING")
    person.apply(answer, made(delay=3 * H))
    person.tick(EASTER_DUE + D)
    assert person.of(SLA) == []
    assert person.expectations(SLA)[0].fulfilled_by == answer.event_id


def test_a_late_answer_resolves_the_alert() -> None:
    person = Person()
    person.apply(made())
    person.tick(EASTER_DUE + D)
    person.apply(referral("declined", "HOUSING", EASTER_DUE + 2 * D, by="HOUSING"))
    assert [a.action for a in person.of(SLA)] == ["raised", "resolved"]


def test_withdrawing_the_referral_withdraws_the_expectation() -> None:
    person = Person()
    person.apply(made(), referral("withdrawn", "HOUSING", utc(2026, 4, 7, 9)))
    person.tick(EASTER_DUE + D)
    assert person.of(SLA) == [] and person.expectations(SLA)[0].status == "withdrawn"
    late = Person()
    late.apply(made())
    late.tick(EASTER_DUE + D)
    late.apply(referral("closed", "HOUSING", EASTER_DUE + 2 * D))
    [resolved] = late.of(SLA, "resolved")
    assert resolved.resolution is not None and resolved.resolution.startswith("withdrawn")


def test_the_same_referral_made_twice_keeps_the_first_deadline() -> None:
    person = Person()
    first = made()
    person.apply(first, first, made(at=utc(2026, 4, 9, 9)))
    [expectation] = person.expectations(SLA)
    assert expectation.trigger_event_id == first.event_id and expectation.due_at == EASTER_DUE
