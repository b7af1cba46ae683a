"""The alert read model's fold: pure, one handler per action, the same alert whatever order
a batch's events came in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain import Alert, apply_alert_event, fold_alert_events
from services.alerts.events import AlertEvent, alert_event_id_for, alert_id_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALERT_ID = alert_id_for("stuck-between-services", "hmp-leeds", "5f0c6f2e-8a59-4b8f-9d4e-3f7c1f0f2a11")


def event(action: str, at: datetime = T0, suffix: str = "", **fields: object) -> AlertEvent:
    base: dict[str, object] = dict(
        alert_event_id=alert_event_id_for(ALERT_ID, action + suffix), alert_id=ALERT_ID,
        action=action, at=at, person_key="3f2b8a64-0c1d-4e5f-9a7b-6c5d4e3f2a10",
        rule_id="stuck-between-services", rule_version="1", severity="high",
        duty_team="housing:E08000035", title="Stuck between services",
        explanation="declined twice", source_reference="NICE NG58",
        trigger_event_id="5f0c6f2e-8a59-4b8f-9d4e-3f7c1f0f2a11",
        expected="an accepted referral", window_start=T0 - timedelta(days=1),
        due_at=None)
    return AlertEvent(**{**base, **fields})  # type: ignore[arg-type]


def test_a_raise_opens_the_alert_with_what_the_event_says() -> None:
    alert, rows = apply_alert_event(None, event("raised"))
    assert alert is not None and rows == [alert]
    assert (alert.status, alert.raised_at, alert.duty_team, alert.evidence_count) == (
        "open", T0, "housing:E08000035", 0)


def test_a_second_raise_changes_nothing() -> None:
    alert, _ = apply_alert_event(None, event("raised"))
    again, rows = apply_alert_event(alert, event("raised", at=T0 + timedelta(hours=1)))
    assert again == alert and rows == []


def test_a_resolution_closes_it_and_one_without_an_alert_writes_nothing() -> None:
    alert, _ = apply_alert_event(None, event("raised"))
    later = T0 + timedelta(hours=5)
    resolved, rows = apply_alert_event(alert, event(
        "resolved", at=later, resolution="fulfilled",
        resolving_event_id="0b6c2a2e-1111-4b8f-9d4e-3f7c1f0f2a11"))
    assert resolved is not None and rows == [resolved]
    assert (resolved.status, resolved.resolved_at, resolved.resolution) == (
        "resolved", later, "fulfilled")
    assert apply_alert_event(None, event("resolved", at=later)) == (None, [])


def test_every_event_folded_is_a_version_and_a_comment_changes_only_that() -> None:
    alert, _ = apply_alert_event(None, event("raised"))
    assert alert is not None and alert.version == 1
    commented, rows = apply_alert_event(alert, event("commented", actor="duty-1"))
    assert commented == dataclasses.replace(alert, version=2) and rows == [commented]


evidence_times = st.lists(st.integers(min_value=0, max_value=10_000), min_size=0,
                          max_size=8, unique=True)


@given(evidence_times, st.booleans(), st.randoms(use_true_random=False))
def test_any_arrival_order_folds_to_the_same_alert(minutes: list[int], resolve: bool,
                                                   rng: object) -> None:
    """Raise, later evidence and perhaps a resolution, shuffled: one alert, open or resolved
    as the events say, its evidence counted once each with the latest time."""
    events = [event("raised")] + [
        event("evidence", at=T0 + timedelta(minutes=m), suffix=f"|{m}",
              evidence_event_id=f"e-{m}") for m in minutes]
    if resolve:
        events.append(event("resolved", at=T0 + timedelta(days=9), resolution="fulfilled"))
    rng.shuffle(events)  # type: ignore[attr-defined]
    alerts: dict[str, Alert | None] = {}
    [written] = fold_alert_events(alerts, events)
    assert alerts[ALERT_ID] == written
    assert written.status == ("resolved" if resolve else "open")
    assert written.evidence_count == len(minutes)
    assert written.last_evidence_at == (
        T0 + timedelta(minutes=max(minutes)) if minutes else None)
    assert written.raised_at == T0


def test_an_alert_moves_with_its_records_and_a_separation_reopens_it() -> None:
    raised, _ = apply_alert_event(None, event("raised"))
    moved, rows = apply_alert_event(raised, event("moved", suffix="|c1", person_key="p-2"))
    assert moved is not None and rows == [moved]
    assert (moved.person_key, moved.status) == ("p-2", "open")
    resolved, _ = apply_alert_event(moved, event("resolved", T0 + timedelta(hours=1),
                                                 resolution="records linked: met"))
    assert resolved is not None and resolved.status == "resolved"
    reopened, rows = apply_alert_event(resolved, event("reopened", T0 + timedelta(hours=2),
                                                       suffix="|c2", person_key="p-3"))
    assert reopened is not None and rows == [reopened]
    assert (reopened.status, reopened.resolution, reopened.resolved_at,
            reopened.person_key) == ("open", None, None, "p-3")
    assert apply_alert_event(None, event("reopened")) == (None, [])  # nothing raised yet
