"""After records are linked or separated, each alert is brought in line with its
expectation folded again (services/processor/domain/rules/regrouping.py)."""

from __future__ import annotations

import dataclasses

import pytest

from services.processor.domain.rules.regrouping import corrected
from services.processor.domain.rules.state import (
    ALERTED,
    FULFILLED,
    OPEN,
    RESOLVED,
    WITHDRAWN,
    Expectation,
)
from tests.unit.processor.rules.helpers import T0, H

NOW = T0 + 100 * H
EXPECTATION = Expectation(
    expectation_id="0b7d2f3e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", rule_id="mh-72h-follow-up",
    rule_version="1", person_key="p-1", trigger_event_id="trigger", window_start=T0,
    due_at=T0 + 72 * H, status=ALERTED, raised_at=T0 + 72 * H, duty_team="mh:area",
    severity="critical", title="No follow-up", known_at=T0)


def _as(status: str, **fields: object) -> Expectation:
    return dataclasses.replace(EXPECTATION, status=status, **fields)  # type: ignore[arg-type]


def test_an_alert_whose_expectation_is_now_met_is_resolved_naming_the_link() -> None:
    met = _as(FULFILLED, resolution="met: contact.follow_up", fulfilled_by="e-2")
    saved, [event] = corrected(met, "p-1", "open", "p-1", "change-1", NOW)
    assert saved is None
    assert (event.action, event.resolution, event.resolving_event_id, event.at) == (
        "resolved", "records linked: met: contact.follow_up", "e-2", NOW)
    assert event.alert_id == EXPECTATION.expectation_id and event.actor == "identity"


@pytest.mark.parametrize("status", [WITHDRAWN, RESOLVED])
def test_closed_expectations_leave_a_resolved_alert_alone(status: str) -> None:
    assert corrected(_as(status), "p-1", "resolved", "p-1", "c", NOW) == (None, [])


def test_an_alert_the_link_resolved_reopens_when_the_gap_is_real_again() -> None:
    saved, [event] = corrected(_as(ALERTED), "p-1", "resolved", "p-1", "change-2", NOW)
    assert saved is None and event.action == "reopened"


def test_an_expectation_open_again_with_its_alert_raised_is_alerted_again() -> None:
    """Its deadline had passed when the alert was raised, and the trigger is the same."""
    saved, [event] = corrected(_as(OPEN, raised_at=None), "p-1", "resolved", "p-1", "c", NOW)
    assert saved is not None and saved.status == ALERTED
    assert saved.raised_at == EXPECTATION.due_at  # the deadline, whoever notices first
    assert event.action == "reopened"


def test_an_alert_follows_its_expectation_to_the_person_now_holding_it() -> None:
    saved, [event] = corrected(EXPECTATION, "p-old", "open", "p-1", "change-3", NOW)
    assert saved is None and (event.action, event.person_key) == ("moved", "p-1")


def test_correction_ids_name_the_identity_change() -> None:
    [first] = corrected(EXPECTATION, "p-old", "open", "p-1", "change-3", NOW)[1]
    [again] = corrected(EXPECTATION, "p-old", "open", "p-1", "change-3", NOW)[1]
    [later] = corrected(EXPECTATION, "p-old", "open", "p-1", "change-4", NOW)[1]
    assert first.alert_event_id == again.alert_event_id != later.alert_event_id
