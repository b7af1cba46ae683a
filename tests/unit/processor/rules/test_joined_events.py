"""Stuck between services (pairs) and disengagement during a risk window (contexts)."""

from __future__ import annotations

import pytest

from tests.unit.processor.rules.helpers import T0, D, M, Person, discharge, referral, transition

STUCK = "stuck-between-services"
RISK = "disengaged-in-risk-window"


def declined(by: str, cites: str, at=T0, reason="CITES_OTHER_NEED_FIRST", **kw):  # type: ignore[no-untyped-def]
    return referral("declined", by, at, rid=f"r-{by}", decline_reason=reason, cites=cites,
                    by=by, **kw)


def test_two_services_each_citing_the_other_raise_one_alert() -> None:
    person = Person()
    first = declined("MENTAL_HEALTH", "SUBSTANCE_USE")
    second = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 30 * D)
    person.apply(first, second)
    [alert] = person.of(STUCK)
    assert (alert.action, alert.at, alert.due_at) == ("raised", T0 + 30 * D, None)
    assert alert.trigger_event_id == second.event_id and alert.window_start == T0
    assert "CITES_OTHER_NEED_FIRST" in alert.explanation and "NG58" in alert.source_reference
    assert alert.duty_team == "duty"  # no lead professional known: the decliner's team


def test_either_arrival_order_gives_the_same_alert() -> None:
    first = declined("MENTAL_HEALTH", "SUBSTANCE_USE")
    second = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 30 * D)
    in_order, reversed_ = Person(), Person()
    in_order.apply(first, second)
    late_first = declined("MENTAL_HEALTH", "SUBSTANCE_USE", delay=40 * D,
                          event_id=first.event_id)
    reversed_.apply(second, late_first)
    assert [a.alert_id for a in in_order.of(STUCK)] == [a.alert_id for a in reversed_.of(STUCK)]


@pytest.mark.parametrize(("gap", "alerts"), [(90 * D, 1), (90 * D + M, 0)])
def test_90_day_window(gap, alerts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(declined("MENTAL_HEALTH", "SUBSTANCE_USE"),
                 declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + gap))
    assert len(person.of(STUCK)) == alerts


@pytest.mark.parametrize(("a", "b"), [
    (("MENTAL_HEALTH", "SUBSTANCE_USE"), ("MENTAL_HEALTH", "SUBSTANCE_USE")),  # same service
    (("MENTAL_HEALTH", "SUBSTANCE_USE"), ("SUBSTANCE_USE", "HOUSING")),        # not each other
    (("MENTAL_HEALTH", "MENTAL_HEALTH"), ("MENTAL_HEALTH", "MENTAL_HEALTH")),  # self-citing
])
def test_declines_that_do_not_point_at_each_other_are_silent(a, b) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(declined(*a), declined(*b, T0 + D))
    assert person.of(STUCK) == []


def test_other_decline_reasons_are_silent_and_duplicates_alert_once() -> None:
    person = Person()
    person.apply(declined("MENTAL_HEALTH", "SUBSTANCE_USE", reason="CAPACITY"),
                 declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + D))
    assert person.of(STUCK) == []
    twice = Person()
    second = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + D)
    twice.apply(declined("MENTAL_HEALTH", "SUBSTANCE_USE"), second, second)
    assert len(twice.of(STUCK)) == 1


def test_stuck_alert_goes_to_the_lead_professionals_team() -> None:
    person = Person()
    person.apply(transition("occurred", "LEAD_PROFESSIONAL_CHANGE", T0 - D, by="PROBATION",
                            team="ldu-leeds"),
                 declined("MENTAL_HEALTH", "SUBSTANCE_USE"),
                 declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + D))
    assert [a.duty_team for a in person.of(STUCK)] == ["ldu-leeds"]


def released(at=T0, reason="RELEASED", **kw):  # type: ignore[no-untyped-def]
    return transition("occurred", "PRISON_RELEASE", at, reason=reason,
                      accommodation="SETTLED", **kw)


def marac(at=T0):  # type: ignore[no-untyped-def]
    return referral("accepted", "MARAC", at, rid="marac-1", by="MARAC")


@pytest.mark.parametrize(("after", "alerts"), [(20 * D, 1), (28 * D, 1), (28 * D + M, 0)])
def test_disengagement_within_28_days_of_release(after, alerts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    trigger = discharge("disengaged", T0 + after)
    person.apply(released(), trigger)
    assert len(person.of(RISK)) == alerts
    if alerts:
        [alert] = person.of(RISK)
        assert alert.trigger_event_id == trigger.event_id and alert.at == T0 + after
        assert "PRISON_RELEASE" in alert.explanation and alert.due_at is None


@pytest.mark.parametrize(("after", "alerts"), [(300 * D, 1), (366 * D, 0)])
def test_disengagement_within_a_year_of_a_marac_referral(after, alerts) -> None:  # type: ignore[no-untyped-def]
    person = Person()
    person.apply(marac(), discharge("disengaged", T0 + after))
    assert len(person.of(RISK)) == alerts


def test_temporary_absence_is_not_a_risk_window_and_no_context_is_silent() -> None:
    person = Person()
    person.apply(released(reason="TEMPORARY_ABSENCE_RELEASE"),
                 discharge("disengaged", T0 + D), discharge("completed", T0 + 2 * D))
    assert person.alerts == []


def test_context_arriving_after_the_disengagement_still_raises_once() -> None:
    person = Person()
    trigger = discharge("disengaged", T0 + 10 * D)
    person.apply(trigger, marac(T0 - 5 * D), released(T0), trigger)
    [alert] = person.of(RISK)
    assert alert.trigger_event_id == trigger.event_id


def test_risk_alert_goes_to_the_latest_lead_professional() -> None:
    person = Person()
    person.apply(
        transition("occurred", "LEAD_PROFESSIONAL_CHANGE", T0 - 20 * D, tid="lp-1",
                   by="PROBATION", team="ldu-leeds"),
        transition("occurred", "LEAD_PROFESSIONAL_CHANGE", T0 - 10 * D, tid="lp-2",
                   by="SOCIAL_CARE", team="asc-west"),
        # an older change recorded late does not take over
        transition("occurred", "LEAD_PROFESSIONAL_CHANGE", T0 - 30 * D, tid="lp-0",
                   by="VOLUNTARY", team="vcs-outreach", delay=30 * D),
        released(), discharge("disengaged", T0 + 3 * D, team="intake"))
    assert [a.duty_team for a in person.of(RISK)] == ["asc-west"]
    assert person.state.lead_team == "asc-west"


def test_without_a_lead_professional_the_discharging_team_is_alerted() -> None:
    person = Person()
    person.apply(released(), discharge("disengaged", T0 + D, team="intake"))
    assert [a.duty_team for a in person.of(RISK)] == ["intake"]
