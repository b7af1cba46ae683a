"""FHIR Task -> referral event: the status table, identifiers, issues with element paths."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.events import AgencyEvent, Identifier
from services.ingest.formats.fhir.resources import operation_outcome
from services.ingest.formats.fhir.statuses import (
    ACTION_BY_STATUS,
    TASK_TRANSITIONS,
    TERMINAL,
    referral_action,
)
from services.ingest.formats.fhir.task import Issue, PostedTask, read_task, referral_event
from services.processor.domain.referrals import RANK, apply_referral_event

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fhir"
KINDS = {"hmp-leeds": "PRISON", "leeds-housing": "HOUSING", "probation-yh": "PROBATION"}
NOW = datetime(2026, 3, 10, tzinfo=UTC)
TOLERANCE = timedelta(minutes=5)

#: Every FHIR R4 Task status and the referral state joinedup keeps for it (None: refused).
REFERRAL_STATE = {
    "draft": None, "requested": "requested", "received": "received", "accepted": "accepted",
    "rejected": "rejected", "ready": "accepted", "in-progress": "accepted",
    "on-hold": "accepted", "cancelled": "cancelled", "failed": "completed",
    "completed": "completed", "entered-in-error": "cancelled",
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def posted(body: dict[str, Any], task_id: str | None = None) -> PostedTask:
    task = read_task(body, task_id)
    assert isinstance(task, PostedTask), task
    return task


def event_of(body: dict[str, Any], agency: str = "hmp-leeds") -> AgencyEvent:
    event = referral_event(posted(body), agency, KINDS, NOW, TOLERANCE)
    assert isinstance(event, AgencyEvent), event
    return event


def with_status(status: str, minute: int = 0) -> dict[str, Any]:
    body = fixture("task-requested.json")
    body["status"] = status
    body["lastModified"] = f"2026-03-02T10:{minute:02d}:00Z"
    return body


def test_the_table_names_every_r4_task_status() -> None:
    # https://hl7.org/fhir/R4/valueset-task-status.html
    assert set(ACTION_BY_STATUS) == set(REFERRAL_STATE) == {
        "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
        "in-progress", "on-hold", "failed", "completed", "entered-in-error"}


@pytest.mark.parametrize("status", sorted(REFERRAL_STATE))
def test_each_status_becomes_its_referral_state(status: str) -> None:
    if REFERRAL_STATE[status] is None:
        issues = read_task(with_status(status))
        assert issues == [Issue("Task.status", issues[0].diagnostics,  # type: ignore[index]
                                "business-rule")]
        return
    event = event_of(with_status(status), agency="leeds-housing")
    assert event.event_type == f"referral.{referral_action(status)}"
    state, change = apply_referral_event(None, dataclasses.replace(event, person_key="p"))
    assert state.status == change.status == REFERRAL_STATE[status]
    assert state.outcome == ({"completed": "completed", "failed": "failed"}.get(status))


def test_forward_moves_of_the_task_state_machine_never_move_the_referral_back() -> None:
    state = {status: s for status, s in REFERRAL_STATE.items() if s is not None}
    for before, after in TASK_TRANSITIONS:
        if before == "draft":
            continue
        assert RANK[state[after]] >= RANK[state[before]], (before, after)
    # cancelled can end any state that is not terminal
    for status, kept in state.items():
        if status not in TERMINAL:
            assert RANK["cancelled"] >= RANK[kept]


def _walks() -> st.SearchStrategy[list[str]]:
    """Paths through the FHIR Task state machine from requested."""
    following: dict[str, list[str]] = {}
    for before, after in TASK_TRANSITIONS:
        following.setdefault(before, []).append(after)
    for status in REFERRAL_STATE:
        if status not in TERMINAL and status != "draft":
            following.setdefault(status, []).append("cancelled")

    @st.composite
    def walk(draw: st.DrawFn) -> list[str]:
        path = ["requested"]
        while following.get(path[-1]) and draw(st.booleans()) and len(path) < 8:
            path.append(draw(st.sampled_from(sorted(following[path[-1]]))))
        return path
    return walk()


@given(_walks(), st.randoms(use_true_random=False))
def test_a_walk_ends_in_its_last_states_referral_state_whatever_the_arrival_order(
        walk: list[str], rng: Any) -> None:
    events = [dataclasses.replace(event_of(with_status(s, minute=i), agency="leeds-housing"),
                                  person_key="p") for i, s in enumerate(walk)]
    rng.shuffle(events)
    state = None
    for event in events:
        state, _ = apply_referral_event(state, event)
    assert state is not None and state.status == REFERRAL_STATE[walk[-1]]


def test_identifiers_come_from_for_and_a_contained_patient() -> None:
    task = posted(fixture("task-contained-patient.json"))
    assert task.identifiers == (Identifier("nhs_number", "9434765919"),
                                Identifier("noms_number", "A1234BC"),
                                Identifier("crn", "X123456"))
    assert task.identifier_paths[1] == "Task.contained[0].identifier[1]"
    event = event_of(fixture("task-contained-patient.json"), agency="probation-yh")
    assert event.payload.referral_id == "probation-yh/Task/cas3-0042"  # type: ignore[union-attr]
    assert event.payload.to_service_kind == "HOUSING"  # type: ignore[union-attr]


def test_a_rejection_carries_the_decline_reason_and_the_need_it_cites() -> None:
    event = event_of(fixture("task-rejected.json"), agency="leeds-housing")
    assert event.event_type == "referral.declined"
    assert event.payload.decline_reason == "CITES_OTHER_NEED_FIRST"  # type: ignore[union-attr]
    assert event.payload.cites_service_kind == "SUBSTANCE_USE"  # type: ignore[union-attr]


def test_the_version_is_the_idempotency_key() -> None:
    first, again = event_of(with_status("requested")), event_of(with_status("requested"))
    assert first.event_id == again.event_id and first == again
    assert event_of(with_status("requested", minute=1)).event_id != first.event_id
    # the Task as posted travels in the event, with the version joinedup gave it
    resource = json.loads(first.extra["fhir.task"])
    assert resource["meta"]["versionId"] == first.event_id
    assert resource["for"]["identifier"]["value"] == "9434765919"


INVALID = [
    ("invalid-nhs-number.json", "Task.for.identifier.value", "9434765918"),
    ("invalid-identifier-system.json", "Task.for.identifier.system", "example.org"),
    ("invalid-unknown-element.json", "Task.contained[0].colour", "blue"),
    ("invalid-missing-status.json", "Task.status", None),
    ("invalid-last-modified.json", "Task.lastModified", "yesterday"),
    ("invalid-draft.json", "Task.status", None),
    ("invalid-owner.json", "Task.owner.reference", "Practitioner"),
    ("invalid-noms-number.json", "Task.contained[0].identifier[1].value", "not-a-noms"),
]


@pytest.mark.parametrize(("name", "expression", "value"), INVALID)
def test_an_invalid_task_names_the_element_never_the_value(
        name: str, expression: str, value: str | None) -> None:
    task = read_task(fixture(name))
    issues = task if isinstance(task, list) else referral_event(
        task, task.requester, KINDS, NOW, TOLERANCE)
    assert isinstance(issues, list)
    outcome = operation_outcome(issues)
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [[expression]]
    if value is not None:
        assert value not in json.dumps(outcome)


def test_only_the_requester_or_the_owner_writes_a_task() -> None:
    issues = referral_event(posted(with_status("accepted")), "probation-yh", KINDS, NOW,
                            TOLERANCE)
    assert isinstance(issues, list) and issues[0].code == "forbidden"
    unknown = referral_event(posted(with_status("requested")), "hmp-leeds",
                             {"hmp-leeds": "PRISON"}, NOW, TOLERANCE)
    assert isinstance(unknown, list) and unknown[0].expression == "Task.owner"


def test_a_put_must_carry_the_id_of_its_url() -> None:
    assert posted(with_status("accepted"), "housing-ref-0001").task_id == "housing-ref-0001"
    issues = read_task(with_status("accepted"), "another-id")
    assert isinstance(issues, list) and issues[0].expression == "Task.id"


def test_a_task_without_an_id_gets_one() -> None:
    body = with_status("requested")
    del body["id"]
    assert posted(body).task_id


def test_not_a_task_is_refused_as_a_structure_problem() -> None:
    assert read_task({"resourceType": "Patient"}) == [Issue(
        "Task.resourceType", "the body must be a FHIR Task resource", "structure", True)]
    assert read_task([1, 2]) == read_task({"resourceType": "Patient"})
