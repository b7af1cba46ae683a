"""The synthetic population: deterministic, valid, plausible, and in a believable order."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from services.common.events import AgencyEvent, Referral, Transition
from services.common.identifiers import nhs_number_is_valid
from services.common.serde.agency_event import decode_event, encode_event
from services.common.validation import event_problems
from services.simulation import AGENCIES, simulate
from services.simulation.agencies import AGENCY_BY_ID, LEEDS, MANCHESTER
from services.simulation.population import DAYS_PER_MONTH
from tests.unit.simulation import measures as m

START = datetime(2026, 1, 5, tzinfo=UTC)
MONTHS = 12
END = START + timedelta(days=round(MONTHS * DAYS_PER_MONTH))


@pytest.fixture(scope="module")
def small() -> list[AgencyEvent]:
    return simulate(seed=5, people=400, months=6, start=START)


@pytest.fixture(scope="module")
def year() -> list[AgencyEvent]:
    """Big enough for proportions to settle: 3,000 people over a year (~75,000 events)."""
    return simulate(seed=4, people=3000, months=MONTHS, start=START)


@pytest.fixture(scope="module")
def people(year: list[AgencyEvent]) -> dict[str, list[AgencyEvent]]:
    return m.by_person(year)


def test_same_seed_gives_identical_events_and_bytes(small: list[AgencyEvent]) -> None:
    again = simulate(seed=5, people=400, months=6, start=START)
    assert again == small
    assert [encode_event(e) for e in again[:500]] == [encode_event(e) for e in small[:500]]


def test_different_seeds_give_different_populations(small: list[AgencyEvent]) -> None:
    other = simulate(seed=6, people=400, months=6, start=START)
    assert {e.event_id for e in other}.isdisjoint({e.event_id for e in small})
    assert {e.identifier_key for e in other} != {e.identifier_key for e in small}


def test_a_persons_history_does_not_depend_on_population_size() -> None:
    few = simulate(seed=9, people=20, months=3, start=START)
    many = simulate(seed=9, people=60, months=3, start=START)
    keys = {e.identifier_key for e in few}
    assert [e for e in many if e.identifier_key in keys] == few


def test_volume_fits_the_downstream_tests_and_benchmarks(small: list[AgencyEvent],
                                                          year: list[AgencyEvent]) -> None:
    assert len(small) >= 5_000                      # the worker-crash e2e test needs this many
    assert 10 <= len(small) / 400 <= 25             # events per person over six months
    assert 18 <= len(year) / 3000 <= 40             # ... over a year
    assert len({e.source.agency for e in small}) >= 15
    assert len({e.identifier_key for e in year}) >= 0.9 * 3000  # nearly everyone is known to someone


def test_every_event_survives_the_avro_round_trip(small: list[AgencyEvent]) -> None:
    for event in small:
        assert decode_event(encode_event(event)) == event


def test_every_event_passes_the_ingest_checks(small: list[AgencyEvent]) -> None:
    problems = [(e.event_id, p) for e in small for p in event_problems(e)]
    assert problems == []


def test_nhs_numbers_are_valid_test_range_numbers_on_every_event(year: list[AgencyEvent]) -> None:
    for event in year:
        nhs = [i.value for i in event.identifiers if i.scheme == "nhs_number"]
        assert len(nhs) == 1
        assert nhs_number_is_valid(nhs[0]) and nhs[0].startswith("999")
        assert event.identifier_key == f"nhs_number:{nhs[0]}"


def test_each_identifier_belongs_to_exactly_one_person(year: list[AgencyEvent]) -> None:
    owner: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in year:
        for identifier in event.identifiers:
            owner[(identifier.scheme, identifier.value)].add(event.identifier_key)
    assert all(len(keys) == 1 for keys in owner.values())
    schemes = Counter(scheme for scheme, _ in owner)
    assert set(schemes) == {"nhs_number", "noms_number", "crn", "pnc_id", "local_id"}


def test_agencies_record_the_identifiers_they_hold(year: list[AgencyEvent]) -> None:
    for event in year:
        schemes = {i.scheme for i in event.identifiers}
        kind = event.source.service_kind
        if kind == "PRISON":
            assert schemes == {"nhs_number", "noms_number"}
        elif kind == "PROBATION":
            assert schemes == {"nhs_number", "crn", "pnc_id"}
        else:
            assert "nhs_number" in schemes


def test_sources_are_the_registered_agencies_with_fitting_sensitivity(year: list[AgencyEvent]) -> None:
    expected = {"PRISON": {"CRIMINAL_JUSTICE", "SUBSTANCE_USE"},
                "PROBATION": {"CRIMINAL_JUSTICE", "SUBSTANCE_USE"},
                "MENTAL_HEALTH": {"MENTAL_HEALTH", "SUBSTANCE_USE"},
                "SUBSTANCE_USE": {"SUBSTANCE_USE"}, "MARAC": {"DOMESTIC_ABUSE"},
                "ACUTE_HOSPITAL": {"HEALTH"}}
    for event in year:
        agency = AGENCY_BY_ID[event.source.agency]
        assert event.source.service_kind == agency.service_kind
        assert event.source.area in (LEEDS, MANCHESTER)
        allowed = expected.get(agency.service_kind)
        if allowed is not None and not isinstance(event.payload, Referral):
            assert event.sensitivity in allowed
    referrals_to_drugs = [e for e in year if isinstance(e.payload, Referral)
                          and e.payload.to_service_kind == "SUBSTANCE_USE"]
    assert referrals_to_drugs and all(e.sensitivity == "SUBSTANCE_USE" for e in referrals_to_drugs)


def test_agency_registry_covers_the_brief() -> None:
    kinds = Counter(a.service_kind for a in AGENCIES)
    assert kinds["PRISON"] >= 2 and kinds["HOUSING"] >= 2
    for kind in ("PROBATION", "ACUTE_HOSPITAL", "MENTAL_HEALTH", "SUBSTANCE_USE", "SOCIAL_CARE",
                 "LEAVING_CARE", "VOLUNTARY", "MARAC"):
        assert kinds[kind] >= 1
    assert {a.area for a in AGENCIES if a.service_kind == "HOUSING"} == {LEEDS, MANCHESTER}
    assert len({a.agency_id for a in AGENCIES}) == len(AGENCIES)


def test_ids_times_and_stream_order(year: list[AgencyEvent]) -> None:
    assert len({e.event_id for e in year}) == len(year)
    assert all(uuid.UUID(e.event_id).version == 4 for e in year[:1000])
    assert all(e.recorded_at >= e.occurred_at for e in year)
    assert all(START <= e.occurred_at < END for e in year)
    assert all(e.occurred_at.microsecond == 0 for e in year)
    assert [e.recorded_at for e in year] == sorted(e.recorded_at for e in year)
    delays = sorted(e.recorded_at - e.occurred_at for e in year)
    assert delays[len(delays) // 2] < timedelta(hours=2)      # most are keyed in promptly
    assert timedelta(hours=24) < delays[-1] <= timedelta(days=5)  # a few wait for a backlog


def test_events_arrive_out_of_order_across_agencies(people: dict[str, list[AgencyEvent]]) -> None:
    """Some later fact from one agency is recorded before an earlier fact from another."""
    swapped = pairs = 0
    for history in people.values():
        for earlier, later in zip(history, history[1:], strict=False):
            if earlier.source.agency != later.source.agency and earlier.occurred_at < later.occurred_at:
                pairs += 1
                swapped += later.recorded_at < earlier.recorded_at
    assert 0.005 < swapped / pairs < 0.2


def test_referral_chains_happen_in_order(year: list[AgencyEvent]) -> None:
    order = {"made": 0, "acknowledged": 1, "accepted": 2, "declined": 2, "withdrawn": 2, "closed": 3}
    for chain in m.referral_answers(year).values():
        steps = sorted(chain.values(), key=lambda e: e.occurred_at)
        assert [order[e.action] for e in steps] == sorted(order[e.action] for e in steps)
        assert len({"accepted", "declined", "withdrawn"} & chain.keys()) <= 1  # one decision
        made = chain.get("made")
        for event in chain.values():
            if made is not None and event is not made:
                assert event.causation_id == made.event_id
                receiver = made.payload.to_agency  # type: ignore[union-attr]
                assert event.source.agency == (made.source.agency if event.action == "withdrawn"
                                               else receiver)


def test_transitions_happen_in_order(year: list[AgencyEvent]) -> None:
    by_id: dict[str, list[AgencyEvent]] = defaultdict(list)
    for event in year:
        if isinstance(event.payload, Transition):
            by_id[event.payload.transition_id].append(event)
    for events in by_id.values():
        events.sort(key=lambda e: e.occurred_at)
        kinds = [e.payload.kind for e in events]  # type: ignore[union-attr]
        for kind in set(kinds):  # a stay's admission and discharge share the spell's id
            actions = [e.action for e in events if e.payload.kind == kind]  # type: ignore[union-attr]
            if "scheduled" in actions and "occurred" in actions:
                assert actions.index("scheduled") < actions.index("occurred")
            if "cancelled" in actions:
                assert actions[-1] == "cancelled" and "occurred" not in actions
        for first, second in (("MENTAL_HEALTH_ADMISSION", "MENTAL_HEALTH_DISCHARGE"),
                              ("HOSPITAL_ADMISSION", "HOSPITAL_DISCHARGE")):
            if first in kinds and second in kinds:
                assert kinds.index(first) < kinds.index(second)


def test_answers_never_come_before_what_they_answer(year: list[AgencyEvent]) -> None:
    by_event = {e.event_id: e for e in year}
    answered = 0
    for event in year:
        cause = by_event.get(event.causation_id or "")
        if cause is not None:
            answered += 1
            assert cause.identifier_key == event.identifier_key
            assert cause.occurred_at <= event.occurred_at
    assert answered > len(year) * 0.03


def test_release_proportions(people: dict[str, list[AgencyEvent]], year: list[AgencyEvent]) -> None:
    on_time, releases = m.duty_to_refer_on_time(people)
    assert releases > 300
    assert 0.5 <= on_time / releases <= 0.7
    homeless, total = m.released_homeless(people)
    assert 0.1 <= homeless / total <= 0.28
    treated, total = m.treated_in_custody(people)
    assert 0.3 <= treated / total <= 0.5
    seen, due = m.community_treatment_within_21_days(people, END)
    assert due > 100 and 0.25 <= seen / due <= 0.5
    reasons = Counter(e.payload.reason for e in year if isinstance(e.payload, Transition)
                      and e.event_type == "transition.occurred" and e.payload.kind == "PRISON_RELEASE")
    assert reasons["RELEASED"] / sum(reasons.values()) > 0.6
    for noise in ("SENT_TO_COURT", "TEMPORARY_ABSENCE_RELEASE", "TRANSFERRED", "RELEASED_TO_HOSPITAL"):
        assert reasons[noise] > 0
    releases_scheduled = Counter(e.event_type for e in year if isinstance(e.payload, Transition)
                                 and e.payload.kind == "PRISON_RELEASE")
    assert releases_scheduled["transition.cancelled"] > 0
    rescheduled = Counter(e.payload.transition_id for e in year if isinstance(e.payload, Transition)
                          and e.event_type == "transition.scheduled"
                          and e.payload.kind == "PRISON_RELEASE")
    assert any(n == 2 for n in rescheduled.values())


def test_mental_health_discharge_proportions(people: dict[str, list[AgencyEvent]]) -> None:
    followed, discharges = m.after_mental_health_discharge(
        people, "contact.follow_up", timedelta(hours=72), END)
    assert discharges > 150 and 0.7 <= followed / discharges <= 0.9  # most, but not all
    shared, discharges = m.after_mental_health_discharge(
        people, "contact.care_plan_shared", timedelta(hours=24), END)
    assert 0.65 <= shared / discharges <= 0.85


def test_referral_and_contact_proportions(year: list[AgencyEvent],
                                          people: dict[str, list[AgencyEvent]]) -> None:
    chains = [c for c in m.referral_answers(year).values() if "made" in c]
    assert len(chains) > 1000
    unanswered = sum(len(c) == 1 for c in chains) / len(chains)
    declined = sum("declined" in c for c in chains) / len(chains)
    accepted = sum("accepted" in c for c in chains) / len(chains)
    assert 0.03 <= unanswered <= 0.15 and 0.1 <= declined <= 0.3 and 0.5 <= accepted <= 0.85
    stuck = m.stuck_people(people)
    assert 1 <= stuck <= 0.03 * len(people)  # a few people, not a pattern everywhere
    attended, contacts = m.contact_attendance(year)
    assert 0.65 <= attended / contacts <= 0.85
    types = Counter(e.event_type for e in year)
    for event_type in ("discharge.disengaged", "discharge.completed", "referral.withdrawn",
                       "contact.follow_up", "contact.care_plan_shared", "transition.cancelled"):
        assert types[event_type] > 0
    kinds = Counter(e.payload.kind for e in year if isinstance(e.payload, Transition))
    assert kinds["LEAVING_CARE"] > 0 and kinds["HOSPITAL_DISCHARGE"] > 0
    assert any(e.payload.accommodation_on_leaving == "NO_FIXED_ABODE" for e in year
               if isinstance(e.payload, Transition) and e.payload.kind == "HOSPITAL_DISCHARGE")


def test_naive_and_sub_second_starts_are_normalised() -> None:
    naive = simulate(seed=2, people=10, months=1, start=datetime(2026, 1, 5, 0, 0, 0, 123456))
    aware = simulate(seed=2, people=10, months=1, start=START)
    assert naive == aware
    assert simulate(seed=2, people=0, months=6, start=START) == []
    with pytest.raises(ValueError):
        simulate(seed=2, people=-1, months=6, start=START)
