"""Escalation on the wall clock (a test clock) and the team streams, on alerts the real
processor raised: durable timers, the next tier, the fallback team, the acknowledgement
timeout, snoozes waking; a stream that shows arrivals and resumes from Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest

from services.alerts import actions
from services.alerts.desk import DutyDesk, Member
from services.alerts.read_model import LiveDelivery
from services.identity.key_ring import KeyRing
from tests.integration.alerts.conftest import MANAGERS, OPTIONS, OUT_OF_HOURS, DutyWorld

pytestmark = pytest.mark.integration
OFFICER = Member("housing.officer", frozenset([OPTIONS]))


async def state(world: DutyWorld, alert_id: str) -> tuple[str, str, int]:
    row = await world.pool.fetchrow("SELECT status, team_id, tier FROM alert "
                                    "WHERE alert_id = $1::uuid", alert_id)
    return row["status"], row["team_id"], row["tier"]


async def timer(world: DutyWorld, alert_id: str) -> str | None:
    return await world.pool.fetchval("SELECT kind FROM alert_timer WHERE alert_id = $1::uuid",
                                     alert_id)


async def test_unacknowledged_goes_up_a_tier_then_to_the_fallback_team(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()  # high: 30 minutes to acknowledge by default
    assert await timer(duty, alert_id) == "escalate"
    duty.clock.advance(minutes=29)
    await duty.desk.fire_due_timers()
    assert await state(duty, alert_id) == ("open", OPTIONS, 1)
    duty.clock.advance(minutes=2)
    await duty.desk.fire_due_timers()
    assert await state(duty, alert_id) == ("open", MANAGERS, 2)
    # a restart loses nothing: a new desk (as a new process would build) finds the timer
    desk = DutyDesk(duty.pool, KeyRing(duty.settings.key_encryption_key()),
                    LiveDelivery.from_settings(duty.settings, duty.clock), None, duty.clock)
    duty.clock.advance(minutes=31)
    await desk.fire_due_timers()
    assert await state(duty, alert_id) == ("open", OUT_OF_HOURS, 3)
    duty.clock.advance(minutes=31)
    await desk.fire_due_timers()  # with the fallback team: it stays there, on their board
    assert await state(duty, alert_id) == ("open", OUT_OF_HOURS, 3)
    assert await timer(duty, alert_id) is None
    history = await duty.pool.fetch("SELECT action, team_id, tier, detail FROM alert_history "
                                    "WHERE alert_id = $1::uuid AND action = 'escalated' "
                                    "ORDER BY tier", alert_id)
    assert [(h["team_id"], h["tier"]) for h in history] == [(MANAGERS, 2), (OUT_OF_HOURS, 3)]
    assert {h["detail"] for h in history} == {"not acknowledged in time"}
    feed = await duty.pool.fetch("SELECT team_id, action FROM team_feed WHERE alert_id = "
                                 "$1::uuid ORDER BY xid, seq", alert_id)
    # each escalation reached the new team and told the team it left
    assert sorted((f["team_id"], f["action"]) for f in feed) == sorted([
        (OPTIONS, "raised"), (MANAGERS, "escalated"), (OPTIONS, "escalated"),
        (OUT_OF_HOURS, "escalated"), (MANAGERS, "escalated")])


async def test_an_acknowledgement_left_too_long_goes_back_to_open_and_escalates_again(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    await duty.desk.act(OFFICER, alert_id, actions.Acknowledge(1))
    assert await timer(duty, alert_id) == "acknowledgement"
    duty.clock.advance(minutes=60)
    await duty.desk.fire_due_timers()  # acknowledged: no escalation
    assert await state(duty, alert_id) == ("acknowledged", OPTIONS, 1)
    duty.clock.advance(hours=4)
    await duty.desk.fire_due_timers()
    assert await state(duty, alert_id) == ("open", OPTIONS, 1)
    assert await timer(duty, alert_id) == "escalate"
    duty.clock.advance(minutes=31)
    await duty.desk.fire_due_timers()
    assert await state(duty, alert_id) == ("open", MANAGERS, 2)


async def test_a_snoozed_alert_wakes_at_its_time_and_a_resolved_one_has_no_timer(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    await duty.desk.act(OFFICER, alert_id, actions.Snooze(1, duty.clock.now + timedelta(
        hours=3)))
    assert await timer(duty, alert_id) == "wake"
    duty.clock.advance(hours=2)
    await duty.desk.fire_due_timers()
    assert (await state(duty, alert_id))[0] == "snoozed"
    duty.clock.advance(hours=1, seconds=1)
    await duty.desk.fire_due_timers()
    assert (await state(duty, alert_id))[0] == "open"
    await duty.desk.act(OFFICER, alert_id, actions.Resolve(3, "contact-made"))
    assert await timer(duty, alert_id) is None


async def read_events(response: httpx.Response, wanted: int, timeout: float = 20,
                      about: str | None = None) -> list[dict]:
    """The next ``wanted`` events (only those about alert ``about``, if given)."""
    events: list[dict] = []
    current: dict = {}

    async def read() -> None:
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                current["id"] = line[3:].strip()
            elif line.startswith("event:"):
                current["event"] = line[6:].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line[5:].strip())
            elif not line and "data" in current:
                if about is None or current["data"]["alert_id"] == about:
                    events.append(dict(current))
                current.clear()
                if len(events) >= wanted:
                    return
    await asyncio.wait_for(read(), timeout)
    return events


async def test_the_team_stream_shows_arrivals_and_resumes_from_the_last_event_id(
        duty: DutyWorld) -> None:
    async with duty.client("housing.officer") as c, c.stream(
            "GET", f"/v1/teams/{OPTIONS}/stream") as live:
        assert live.status_code == 200
        assert live.headers["content-type"].startswith("text/event-stream")
        first = await duty.raise_alert()
        got = await read_events(live, 1)
    assert got[0]["event"] == "raised" and got[0]["data"]["alert_id"] == first
    assert got[0]["data"]["alert"]["team_name"] == "Leeds housing options"
    missed = await duty.raise_alert()   # while nobody listened
    await duty.desk.act(OFFICER, first, actions.Acknowledge(1))
    async with duty.client("housing.officer") as c, c.stream(
            "GET", f"/v1/teams/{OPTIONS}/stream",
            headers={"Last-Event-ID": got[0]["id"]}) as resumed:
        again = await read_events(resumed, 2)
    assert [(e["event"], e["data"]["alert_id"]) for e in again] == [
        ("raised", missed), ("acknowledged", first)]
    async with duty.client("housing.officer") as c:
        bad = await c.get(f"/v1/teams/{OPTIONS}/stream", headers={"Last-Event-ID": "x; y"})
    assert bad.status_code == 422


async def test_the_stream_tells_a_team_when_an_alert_leaves_it_and_nothing_more(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with duty.client("housing.officer") as c, c.stream(
            "GET", f"/v1/teams/{OPTIONS}/stream") as live:
        duty.clock.advance(minutes=31)
        await duty.desk.fire_due_timers()
        [left] = await read_events(live, 1, about=alert_id)
    assert left["event"] == "escalated" and left["data"]["alert"] is None


async def test_timers_firing_while_members_act_neither_deadlocks_nor_loses_either(
        duty: DutyWorld) -> None:
    """Two duty services fire the timers while members acknowledge the same alerts: each
    alert ends either acknowledged (the member first) or escalated to the next tier, where
    the member no longer finds it (the timer first): never both, never an error."""
    from services.alerts.desk import DeskRefused

    raised = [await duty.raise_alert() for _ in range(6)]
    other = DutyDesk(duty.pool, KeyRing(duty.settings.key_encryption_key()),
                     LiveDelivery.from_settings(duty.settings, duty.clock), None, duty.clock)
    duty.clock.advance(minutes=31)

    async def acknowledge(alert_id: str) -> str:
        try:
            await other.act(OFFICER, alert_id, actions.Acknowledge(1))
            return "acknowledged"
        except DeskRefused as refused:
            return refused.kind

    outcomes = await asyncio.gather(duty.desk.fire_due_timers(), other.fire_due_timers(),
                                    *(acknowledge(a) for a in raised))
    for alert_id, outcome in zip(raised, outcomes[2:], strict=True):
        status, team, _ = await state(duty, alert_id)
        if outcome == "acknowledged":
            assert (status, team) == ("acknowledged", OPTIONS)
        else:
            assert (outcome, status, team) == ("not_found", "open", MANAGERS)
    escalations = await duty.pool.fetchval(
        "SELECT count(*) FROM alert_history WHERE action = 'escalated' AND alert_id = "
        "ANY($1::uuid[])", raised)
    assert escalations == sum(1 for o in outcomes[2:] if o != "acknowledged")
