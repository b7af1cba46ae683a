"""The fhir_task fold: the latest version its requester or owner wrote, nothing else."""

from __future__ import annotations

import dataclasses

from services.common.events import AgencyEvent
from services.ingest.formats.fhir.read_model import track_task
from tests import factories as f
from tests.unit.ingest.test_fhir_task import event_of, with_status


def version(status: str, minute: int, agency: str = "leeds-housing") -> AgencyEvent:
    return dataclasses.replace(event_of(with_status(status, minute), agency), person_key="p")


def test_a_newer_version_replaces_an_older_one_whatever_the_order() -> None:
    made, accepted = version("requested", 0, "hmp-leeds"), version("accepted", 5)
    state, _ = track_task(None, made)
    state, _ = track_task(state, accepted)
    assert state is not None and state.status == "accepted"
    assert state.requester_agency == "hmp-leeds" and state.owner_agency == "leeds-housing"
    late, _ = track_task(state, made)  # the older version arriving late changes nothing
    assert late == state
    backwards, _ = track_task(track_task(None, accepted)[0], made)
    assert backwards == state


def test_a_stranger_cannot_overwrite_a_task() -> None:
    state, _ = track_task(None, version("requested", 0, "hmp-leeds"))
    stranger = dataclasses.replace(version("cancelled", 9, "leeds-housing"),
                                   source=f.SOURCES["PROBATION"])
    assert track_task(state, stranger)[0] == state
    assert track_task(None, stranger)[0] is None


def test_referrals_without_a_task_and_erased_events_change_nothing() -> None:
    assert track_task(None, f.referral("made")) == (None, [])
    erased = dataclasses.replace(version("requested", 0, "hmp-leeds"), erased=True)
    assert track_task(None, erased) == (None, [])
