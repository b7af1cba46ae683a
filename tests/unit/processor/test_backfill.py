"""The backfill's two decisions: which events are history, which alerts are historical."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.alerts.events import AlertEvent, alert_event_id_for, alert_id_for
from services.processor.domain.backfill import BackfillStatus, historical, history_of

CUT_OVER = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUT_OVERS = {"mh-trust-wakefield": CUT_OVER}
moments = st.integers(-400 * 24 * 60, 400 * 24 * 60).map(
    lambda m: CUT_OVER + timedelta(minutes=m))


@given(moments)
def test_an_agencys_events_recorded_before_its_cut_over_are_its_history(at: datetime) -> None:
    expected = "mh-trust-wakefield" if at < CUT_OVER else None
    assert history_of("mh-trust-wakefield", at, CUT_OVERS) == expected
    assert history_of("leeds-cmht", at, CUT_OVERS) is None  # no backfill: always live


def _raised(agency: str, at: datetime, action: str = "raised") -> AlertEvent:
    trigger = str(uuid.uuid4())
    alert_id = alert_id_for("mh-72h-follow-up", agency, trigger)
    return AlertEvent(alert_event_id_for(alert_id, action), alert_id, action, at, "p-1",
                      "mh-72h-follow-up", "1", "critical", "mental-health:E08000035", "t", "e",
                      "s", trigger, "x", at - timedelta(hours=72))


@given(moments)
def test_an_alert_is_historical_when_its_trigger_is_history_raised_before_the_cut_over(
        at: datetime) -> None:
    found = historical(_raised("mh-trust-wakefield", at), CUT_OVERS)
    assert (found is not None) == (at < CUT_OVER)
    if found is not None:
        assert (found.agency, found.cut_over, found.raised_at) == (
            "mh-trust-wakefield", CUT_OVER, at)
    # Another agency's trigger, however old, is not: its alerts were live when raised.
    assert historical(_raised("leeds-cmht", at), CUT_OVERS) is None


def test_only_a_raise_decides() -> None:
    event = _raised("mh-trust-wakefield", CUT_OVER - timedelta(days=30), "resolved")
    assert historical(event, CUT_OVERS) is None


def test_status_in_words() -> None:
    opened = BackfillStatus("a", CUT_OVER, CUT_OVER, "ops", None, None, 10, 2, 0)
    assert opened.state.startswith("open")
    done = BackfillStatus("a", CUT_OVER, CUT_OVER, "ops", CUT_OVER, "ops", 10, 2, 0)
    assert done.state == "finished: held deadlines being released"
    assert BackfillStatus("a", CUT_OVER, CUT_OVER, "ops", CUT_OVER, "ops", 10, 0, 2
                          ).state == "finished"
