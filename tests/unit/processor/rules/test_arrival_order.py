"""Events reach the processor out of order across agencies: the alert history still reads in
order (raised, evidence, resolved; never resolved before raised), and a person has one open
"stuck between services" alert per pair of services however many declines pile up.

Two clocks are exercised: the stream clock (highest recorded_at so far, what a replay uses)
and the worker's clock (each event at its own recorded_at, what the rule stage passes), under
which a late-arriving trigger runs with a clock behind the fulfilment that came first.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alerts.events import AlertEvent
from services.common.events import AgencyEvent
from tests.unit.processor.rules.helpers import T0, D, H, Person, contact, referral, transition
from tests.unit.processor.rules.test_live_versus_replay import PEOPLE, build

FOLLOW_UP = "mh-72h-follow-up"
STUCK = "stuck-between-services"
RANK = {"raised": 0, "resolved": 2}  # every other action sits between the two


def history(alerts: list[AlertEvent], alert_id: str) -> list[str]:
    """One alert's actions as the alert_history query orders them (at, then action)."""
    mine = [a for a in alerts if a.alert_id == alert_id]
    return [a.action for a in sorted(mine, key=lambda a: (a.at, RANK.get(a.action, 1),
                                                          a.alert_event_id))]


def assert_histories_read_in_order(alerts: list[AlertEvent],
                                   events: list[AgencyEvent]) -> None:
    assert len({a.alert_event_id for a in alerts}) == len(alerts), "an alert event twice"
    recorded = {e.event_id: e.recorded_at for e in events}
    for alert in alerts:  # nothing is stamped before the events it stands on were recorded
        assert alert.at >= recorded[alert.trigger_event_id], f"{alert.action} before its trigger"
        if alert.evidence_event_id is not None:
            assert alert.at >= recorded[alert.evidence_event_id]
        if alert.resolving_event_id is not None:
            assert alert.at >= recorded[alert.resolving_event_id]
    raised = {a.alert_id: a for a in alerts if a.action == "raised"}
    for position, alert in enumerate(alerts):
        if alert.action == "raised":
            continue
        assert alert.alert_id in raised, f"{alert.action} without a raise"
        assert alert.at >= raised[alert.alert_id].at, f"{alert.action} before the raise"
        assert alerts.index(raised[alert.alert_id]) < position, "emitted before its raise"
    for alert_id in raised:
        actions = history(alerts, alert_id)
        assert actions[0] == "raised" and "raised" not in actions[1:]
        assert actions.count("resolved") <= 1 and actions[-1] in ("raised", "evidence",
                                                                   "resolved")
        if "resolved" in actions:
            assert actions[-1] == "resolved"


# --- a fulfilment that arrives before its trigger ----------------------------------------------

def test_late_follow_up_arriving_before_its_discharge_resolves_after_the_raise() -> None:
    """The ward's discharge (occurred T0, recorded T0+1h) reaches joinedup after the late
    follow-up (T0+100h). The gap was real: raised at the deadline, resolved when the follow-up
    was recorded; before the fix the resolution was stamped T0+1h, before the raise."""
    for worker_clock in (True, False):
        person = Person(worker_clock=worker_clock)
        follow_up = contact("follow_up", T0 + 100 * H)
        discharge = transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH",
                               delay=H)
        person.apply(follow_up, discharge)
        raised, resolved = person.of(FOLLOW_UP)
        assert (raised.action, raised.at) == ("raised", T0 + 72 * H)
        assert (resolved.action, resolved.at) == ("resolved", T0 + 100 * H)
        assert resolved.resolving_event_id == follow_up.event_id
        assert "28 hours after the deadline" in (resolved.resolution or "")
        [expectation] = person.expectations(FOLLOW_UP)
        assert expectation.closed_at == T0 + 100 * H and expectation.raised_at == T0 + 72 * H
        assert history(person.alerts, raised.alert_id) == ["raised", "resolved"]
        assert_histories_read_in_order(person.alerts, [follow_up, discharge])


def test_a_trigger_recorded_after_its_deadline_resolves_no_earlier_than_it_was_raised() -> None:
    """Raised when the discharge was recorded (T0+100h), long after the deadline; the
    follow-up recorded at T0+80h arrived first. The resolution cannot predate the raise."""
    person = Person(worker_clock=True)
    person.apply(contact("follow_up", T0 + 80 * H),
                 transition("occurred", "MENTAL_HEALTH_DISCHARGE", T0, by="MENTAL_HEALTH",
                            delay=100 * H))
    raised, resolved = person.of(FOLLOW_UP)
    assert raised.at == T0 + 100 * H and resolved.at == T0 + 100 * H
    assert history(person.alerts, raised.alert_id) == ["raised", "resolved"]


arrivals = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 1), st.integers(0, 2400),
                              st.integers(0, 200), st.integers(0, 7), st.booleans()),
                    min_size=1, max_size=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals, st.randoms(use_true_random=False), st.booleans())
def test_histories_read_in_order_whatever_the_arrival_order(steps, rng, worker_clock) -> None:  # type: ignore[no-untyped-def]
    events = [build(choice, n, PEOPLE[who], at_h, delay_h, pick, flag)
              for n, (choice, who, at_h, delay_h, pick, flag) in enumerate(steps)]
    rng.shuffle(events)
    people = {nhs: Person(f"nhs_number:{nhs}", worker_clock=worker_clock) for nhs in PEOPLE}
    for event in events:
        people[event.identifiers[0].value].apply(event)
    for person in people.values():
        person.tick(max(e.recorded_at for e in events) + 400 * D)
        assert_histories_read_in_order(person.alerts, events)
        for expectation in person.state.expectations:
            if expectation.raised_at is not None and expectation.closed_at is not None:
                assert expectation.closed_at >= expectation.raised_at


# --- stuck between services: one alert per pair, later declines join it ------------------------

def declined(by: str, cites: str, at=T0, rid: str | None = None, **kw):  # type: ignore[no-untyped-def]
    return referral("declined", by, at, rid=rid or f"r-{by}-{at:%j}", by=by, cites=cites,
                    decline_reason="CITES_OTHER_NEED_FIRST", **kw)


def test_a_further_decline_joins_the_open_alert_instead_of_raising_another() -> None:
    person = Person()
    first = declined("MENTAL_HEALTH", "SUBSTANCE_USE")
    second = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 30 * D)
    again = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 60 * D, team="intake-2")
    person.apply(first, second, again, again)  # delivered twice: joins once
    raised, joined = person.of(STUCK)
    assert (raised.action, raised.trigger_event_id, raised.duty_team) == (
        "raised", second.event_id, "duty")
    assert (joined.action, joined.alert_id, joined.at) == ("evidence", raised.alert_id,
                                                           T0 + 60 * D)
    assert (joined.evidence_event_id, joined.evidence_agency) == (again.event_id, "forward-leeds")
    assert joined.duty_team == raised.duty_team  # routed with its alert, not to "intake-2"
    assert "referral.declined" in (joined.detail or "") and "SUBSTANCE_USE" in (joined.detail
                                                                                 or "")
    [alert] = person.expectations(STUCK)
    assert alert.evidence == tuple(f"{e.source.agency}/{e.event_id}"
                                   for e in (second, first, again))
    assert alert.due_at == T0 + 60 * D  # kept as long after the latest decline


def test_a_decline_from_either_side_joins_and_another_pair_of_services_has_its_own() -> None:
    person = Person()
    person.apply(declined("MENTAL_HEALTH", "SUBSTANCE_USE"),
                 declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + D),
                 declined("MENTAL_HEALTH", "SUBSTANCE_USE", T0 + 2 * D, rid="r-new"),
                 declined("HOUSING", "MENTAL_HEALTH", T0 + 3 * D),
                 declined("MENTAL_HEALTH", "HOUSING", T0 + 4 * D, rid="r-mh-housing"))
    actions = [(a.action, a.alert_id) for a in person.of(STUCK)]
    stuck_mh_su, stuck_mh_housing = (a.alert_id for a in person.of(STUCK, "raised"))
    assert actions == [("raised", stuck_mh_su), ("evidence", stuck_mh_su),
                       ("raised", stuck_mh_housing)]


def test_a_decline_outside_90_days_of_any_partner_does_not_join() -> None:
    person = Person()
    person.apply(declined("MENTAL_HEALTH", "SUBSTANCE_USE"),
                 declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + D),
                 declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 92 * D, rid="r-late"))
    assert [a.action for a in person.of(STUCK)] == ["raised"]


def test_three_declines_arriving_in_reverse_give_the_in_order_alert() -> None:
    """The last two arrive first, on the same side, with nothing to pair with; the first one
    then completes two pairs at once: the alert is keyed on the pair that completed first."""
    a = declined("MENTAL_HEALTH", "SUBSTANCE_USE")
    b = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 30 * D)
    c = declined("SUBSTANCE_USE", "MENTAL_HEALTH", T0 + 60 * D)
    in_order, reversed_ = Person(), Person()
    in_order.apply(a, b, c)
    reversed_.apply(c, b, a)
    assert [(x.action, x.alert_id, x.trigger_event_id, x.evidence_event_id)
            for x in reversed_.of(STUCK)] == [
        (x.action, x.alert_id, x.trigger_event_id, x.evidence_event_id)
        for x in in_order.of(STUCK)]


KINDS = ("MENTAL_HEALTH", "SUBSTANCE_USE", "HOUSING")
# (declining service, cited service, day it happened, hours it was recorded late)
decline = st.tuples(st.sampled_from(KINDS), st.sampled_from(KINDS), st.integers(0, 200),
                    st.integers(0, 20 * 24)).filter(lambda d: d[0] != d[1])


def expected_pairs(declines: list) -> dict[frozenset[str], set[int]]:  # type: ignore[type-arg]
    """The oracle: for each pair of services, the declines that pair up with another within
    90 days (declining the one the other cites, and cited by it)."""
    found: dict[frozenset[str], set[int]] = defaultdict(set)
    for (i, x), (j, y) in itertools.combinations(enumerate(declines), 2):
        if x[0] == y[1] and x[1] == y[0] and abs(x[2] - y[2]) <= 90:
            found[frozenset(x[:2])] |= {i, j}
    return found


def check_one_alert_per_pair(declines: list, order: list[int], worker_clock: bool) -> None:  # type: ignore[type-arg]
    events = [declined(by, cites, T0 + day * D, rid=f"r-{i}", delay=hours * H)
              for i, (by, cites, day, hours) in enumerate(declines)]
    person = Person(worker_clock=worker_clock)
    person.apply(*(events[i] for i in order))
    assert_histories_read_in_order(person.alerts, events)
    expected = expected_pairs(declines)
    alerts = person.expectations(STUCK)
    assert len(alerts) == len(expected), "one alert per pair of services"
    index = {f"{e.source.agency}/{e.event_id}": i for i, e in enumerate(events)}
    for alert in alerts:
        services = frozenset(str(v) for v in alert.keys["pair"].split("|"))  # type: ignore[union-attr]
        assert sorted(index[ref] for ref in alert.evidence) == sorted(expected[services])
        joined = [a for a in person.of(STUCK, "evidence") if a.alert_id == alert.expectation_id]
        assert len(joined) == len(alert.evidence) - 2  # the first pair is in the raise itself


@settings(max_examples=300, deadline=None)
@given(st.lists(decline, min_size=2, max_size=8), st.booleans())
def test_one_alert_per_pair_when_agencies_record_late(declines, worker_clock) -> None:  # type: ignore[no-untyped-def]
    """Arrival in recorded order with each decline up to 20 days late."""
    order = sorted(range(len(declines)),
                   key=lambda i: (declines[i][2] * 24 + declines[i][3], i))
    check_one_alert_per_pair(declines, order, worker_clock)


@settings(max_examples=300, deadline=None)
@given(st.lists(decline.map(lambda d: (d[0], d[1], d[2] % 25, d[3])), min_size=2, max_size=7)
       .flatmap(lambda ds: st.tuples(st.just(ds), st.permutations(range(len(ds))))),
       st.booleans())
def test_one_alert_per_pair_in_any_arrival_order(case, worker_clock) -> None:  # type: ignore[no-untyped-def]
    """Any arrival order at all (within 25 days, so nothing ages out of memory meanwhile)."""
    declines, order = case
    check_one_alert_per_pair(declines, list(order), worker_clock)


def test_the_pair_key_names_the_services_not_the_person() -> None:
    person = Person()
    person.apply(declined("SUBSTANCE_USE", "MENTAL_HEALTH"),
                 declined("MENTAL_HEALTH", "SUBSTANCE_USE", T0 + D))
    [alert] = person.expectations(STUCK)
    assert alert.keys == {"pair": "MENTAL_HEALTH|SUBSTANCE_USE"}
    assert timedelta(0) <= alert.due_at - alert.window_start <= timedelta(days=1)
