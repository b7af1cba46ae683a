"""The HMPPS mapping: each sample becomes the joinedup event it means, the quirks of the real
messages are handled, and anything else is refused with a reason naming fields only."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import Identifier, IdentityNotice, Referral, Transition
from services.common.validation import event_problems
from services.ingest.formats.hmpps.mapper import Mapped, Unmappable, map_event, person_of
from services.ingest.formats.hmpps.mapping import load_mapping

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hmpps"
MAPPING = load_mapping()
SECRET = b"unit-test-secret-0123456789abcdef"
AGENCY = "hmpps"


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def mapped(body: dict[str, Any] | str) -> Mapped:
    result = map_event(json.dumps(body) if isinstance(body, dict) else body, AGENCY, MAPPING,
                       SECRET)
    assert isinstance(result, Mapped), result
    assert event_problems(result.event) == []
    return result


def refused(body: dict[str, Any]) -> Unmappable:
    result = map_event(json.dumps(body), AGENCY, MAPPING, SECRET)
    assert isinstance(result, Unmappable), result
    return result


def test_a_release_is_a_prison_release_transition_with_its_reason() -> None:
    event = mapped(sample("prisoner-released-released")).event
    assert event.event_type == "transition.occurred"
    assert isinstance(event.payload, Transition)
    assert (event.payload.kind, event.payload.reason, event.payload.location) == (
        "PRISON_RELEASE", "RELEASED", "LEI")
    assert event.payload.accommodation_on_leaving is None  # HMPPS does not say: unknown
    assert event.identifiers == (Identifier("noms_number", "A7341DX"),)
    assert (event.source.agency, event.source.service_kind) == (AGENCY, "PRISON")
    assert event.occurred_at == datetime(2026, 11, 20, 10, 2, 11, 481000, tzinfo=UTC)
    assert event.recorded_at > event.occurred_at
    assert event.payload.transition_id == event.event_id
    assert event.extra["hmpps_event_type"] == "prisoner-offender-search.prisoner.released"


def test_both_reports_of_one_release_are_one_event() -> None:
    search = mapped(sample("prisoner-released-released")).event
    offender_events = mapped(sample("prison-offender-events-released")).event
    assert search.occurred_at != offender_events.occurred_at
    assert search.event_id == offender_events.event_id


def test_the_key_depends_on_the_reason_the_day_the_agency_and_the_secret() -> None:
    body = sample("prisoner-released-released")
    base = mapped(body).event.event_id
    other_reason = copy.deepcopy(body)
    other_reason["additionalInformation"]["reason"] = "TEMPORARY_ABSENCE_RELEASE"
    other_day = {**body, "occurredAt": "2026-11-21T10:02:11Z"}
    assert mapped(other_reason).event.event_id != base
    assert mapped(other_day).event.event_id != base
    other = map_event(json.dumps(body), "hmpps-north", MAPPING, SECRET)
    assert isinstance(other, Mapped) and other.event.event_id != base
    keyed = map_event(json.dumps(body), AGENCY, MAPPING, b"another-secret-0123456789abcdef")
    assert isinstance(keyed, Mapped) and keyed.event.event_id != base


def test_the_release_day_is_the_day_in_london() -> None:
    # 23:30 UTC in summer is 00:30 the next day in London: another day, another release.
    body = {**sample("prisoner-released-released"), "occurredAt": "2026-07-01T23:30:00Z"}
    next_morning = {**body, "occurredAt": "2026-07-02T08:00:00+01:00"}
    assert mapped(body).event.event_id == mapped(next_morning).event.event_id


def test_temporary_absence_keeps_its_reason() -> None:
    event = mapped(sample("prisoner-released-temporary-absence")).event
    assert isinstance(event.payload, Transition)
    assert event.payload.reason == "TEMPORARY_ABSENCE_RELEASE"


def test_a_reception() -> None:
    event = mapped(sample("prisoner-received")).event
    assert isinstance(event.payload, Transition)
    assert (event.event_type, event.payload.kind, event.payload.reason) == (
        "transition.occurred", "PRISON_RECEPTION", "ADMISSION")


def test_a_merge_keeps_the_kept_number_and_names_the_removed_one() -> None:
    event = mapped(sample("prisoner-merged")).event
    assert event.event_type == "identity.merged"
    assert event.identifiers == (Identifier("noms_number", "A7341DX"),)
    assert event.payload == IdentityNotice("noms_number", "B2290KE")
    # a naive occurredAt is London time (14:45 in November is 14:45 UTC)
    assert event.occurred_at == datetime(2026, 11, 22, 14, 45, 3, tzinfo=UTC)


def test_the_merge_reads_additional_information_whatever_the_description_says() -> None:
    body = sample("prisoner-merged")
    # the emitter writes "merged from <removed> to <kept>"; any other text changes nothing
    body["description"] = "A prisoner has been merged from A7341DX to B2290KE"
    assert mapped(body).event == mapped(sample("prisoner-merged")).event


def test_cas3_referral_with_unknown_noms_number_uses_the_crn() -> None:
    event = mapped(sample("cas3-referral-submitted")).event
    assert event.identifiers == (Identifier("crn", "X318204"),)
    assert isinstance(event.payload, Referral)
    assert (event.event_type, event.payload.to_service_kind, event.payload.to_agency) == (
        "referral.made", "HOUSING", AGENCY)
    assert event.payload.referral_id == "1d6f3f2e-3a77-4f6e-9a8b-5b1b0c2d7e10"


def test_cas3_booking_confirmed_accepts_the_same_referral() -> None:
    made = mapped(sample("cas3-referral-submitted")).event
    accepted = mapped(sample("cas3-booking-confirmed")).event
    assert accepted.event_type == "referral.accepted"
    assert isinstance(made.payload, Referral) and isinstance(accepted.payload, Referral)
    assert accepted.payload.referral_id == made.payload.referral_id
    assert set(accepted.identifiers) == {Identifier("crn", "X318204"),
                                         Identifier("noms_number", "A7341DX")}


def test_a_bare_date_is_midnight_in_london_and_a_null_id_falls_back_to_the_key() -> None:
    event = mapped(sample("approved-premises-booking-made")).event
    assert isinstance(event.payload, Transition)
    assert event.payload.transition_id == event.event_id   # bookingId was null
    arrived = mapped(sample("cas3-person-arrived")).event
    assert arrived.occurred_at == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert isinstance(arrived.payload, Transition)
    assert (arrived.payload.kind, arrived.payload.accommodation_on_leaving) == (
        "ACCOMMODATION_CHANGE", "TEMPORARY")


def test_community_manager_allocated_is_a_lead_professional_change() -> None:
    event = mapped(sample("community-manager-allocated")).event
    assert isinstance(event.payload, Transition)
    assert event.payload.kind == "LEAD_PROFESSIONAL_CHANGE"
    assert event.source.service_kind == "PROBATION"


def test_an_unknown_event_type_is_unmapped_and_named() -> None:
    result = refused(sample("unmapped-sentence-calculated"))
    assert (result.kind, result.hmpps_type) == ("unmapped",
                                                "calculate-release-dates.prisoner.changed")


def test_no_identifier_at_all_is_refused_with_a_reason() -> None:
    result = refused(sample("no-person"))
    assert result.kind == "no_person"
    assert "Unknown" not in result.reason


@pytest.mark.parametrize(("change", "words"), [
    (lambda b: b["additionalInformation"].update(reason="ESCAPED"), "reason is not one of"),
    (lambda b: b["additionalInformation"].pop("reason"), "reason is required"),
    (lambda b: b.update(occurredAt="yesterday"), "occurredAt is not"),
    (lambda b: b.pop("occurredAt"), "occurredAt is required"),
    (lambda b: b["personReference"].update(identifiers=[{"type": "NOMS", "value": "12"}]),
     "not a valid noms number"),
    (lambda b: b["personReference"].update(identifiers="A7341DX"), "must be a list"),
])
def test_structure_and_enumerations_are_checked(change: Any, words: str) -> None:
    body = sample("prisoner-released-released")
    change(body)
    result = refused(body)
    assert result.kind == "invalid" and words in result.reason
    assert "A7341DX" not in result.reason and "ESCAPED" not in result.reason


def test_the_free_text_description_is_never_checked() -> None:
    body = sample("prisoner-released-released")
    body["description"] = "Released on licence \u2014 any text at all"
    assert mapped(body).event == mapped(sample("prisoner-released-released")).event


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda c: st.lists(c, max_size=3)
                              | st.dictionaries(st.text(max_size=10), c, max_size=3),
                              max_leaves=10).map(lambda v: json.dumps(v).encode())))
def test_anything_at_all_is_mapped_or_refused_never_raises(raw: bytes) -> None:
    result = map_event(raw, AGENCY, MAPPING, SECRET)
    assert isinstance(result, Mapped | Unmappable)
    person_of(raw)


@given(st.sampled_from(["prisoner-released-released", "prisoner-merged", "prisoner-received",
                        "cas3-booking-confirmed", "community-manager-allocated"]),
       st.dictionaries(st.sampled_from(["eventType", "occurredAt", "version", "publishedAt",
                                        "personReference", "additionalInformation"]),
                       st.none() | st.integers() | st.text(max_size=12)
                       | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
                       max_size=2))
def test_a_damaged_sample_is_mapped_or_refused(name: str, damage: dict[str, Any]) -> None:
    body = {**sample(name), **damage}
    result = map_event(json.dumps(body), AGENCY, MAPPING, SECRET)
    if isinstance(result, Mapped):
        assert event_problems(result.event) == []
    else:
        assert result.reason and result.kind in ("unmapped", "invalid", "no_person")


def test_person_of_names_the_strongest_usable_identifier() -> None:
    raw = json.dumps(sample("cas3-booking-confirmed")).encode()
    assert person_of(raw) == Identifier("noms_number", "A7341DX")
    assert person_of(json.dumps(sample("no-person")).encode()) is None
