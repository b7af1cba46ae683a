"""The alert API over a real socket, on alerts the real processor raised: routing with its
fallback, team scoping on every endpoint, each action and its history, compare-and-set."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.common.serde.sealing import is_sealed
from tests.integration.alerts.conftest import (
    BRADFORD,
    BRADFORD_OPTIONS,
    NOWHERE,
    OPTIONS,
    OUT_OF_HOURS,
    DutyWorld,
)

pytestmark = pytest.mark.integration


async def alert_of(world: DutyWorld, username: str, alert_id: str) -> dict:
    async with world.client(username) as c:
        answer = await c.get(f"/v1/alerts/{alert_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_alerts_go_to_their_areas_team_and_an_unrouted_area_to_the_fallback(
        duty: DutyWorld) -> None:
    leeds, bradford, elsewhere = await asyncio.gather(
        duty.raise_alert(), duty.raise_alert(BRADFORD), duty.raise_alert(NOWHERE))
    teams = {r["alert_id"]: r["team_id"] for r in await duty.pool.fetch(
        "SELECT alert_id::text, team_id FROM alert WHERE alert_id = ANY($1::uuid[])",
        [leeds, bradford, elsewhere])}
    assert teams == {leeds: OPTIONS, bradford: BRADFORD_OPTIONS, elsewhere: OUT_OF_HOURS}
    shown = await alert_of(duty, "housing.officer", leeds)
    assert (shown["team_name"], shown["status"], shown["version"], shown["tier"]) == (
        "Leeds housing options", "open", 1, 1)
    assert "Source:" in shown["explanation"] and shown["history"][0]["action"] == "raised"


async def test_a_member_of_another_team_gets_nothing_by_id_filter_or_stream(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with duty.client("bradford.officer") as other:
        by_id = await other.get(f"/v1/alerts/{alert_id}")
        acted = await other.post(f"/v1/alerts/{alert_id}/acknowledgement", json={"version": 1})
        by_filter = await other.get("/v1/alerts", params={"team": OPTIONS})
        own = await other.get("/v1/alerts")
        stream = await other.get(f"/v1/teams/{OPTIONS}/stream")
        members = await other.get(f"/v1/teams/{OPTIONS}/members")
    assert (by_id.status_code, acted.status_code) == (404, 404)
    assert (by_filter.status_code, stream.status_code, members.status_code) == (403, 403, 403)
    assert alert_id not in by_id.text + acted.text + by_filter.text + stream.text
    assert own.status_code == 200
    assert all(a["team_id"] == BRADFORD_OPTIONS for a in own.json()["alerts"])
    async with duty.client() as anonymous:
        assert (await anonymous.get("/v1/alerts")).status_code == 401
    assert (await duty.pool.fetchval(
        "SELECT status FROM alert WHERE alert_id = $1::uuid", alert_id)) == "open"


async def test_each_action_is_an_event_in_the_history_and_on_the_alerts_topic(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    until = (duty.clock.now + timedelta(hours=2)).isoformat()
    async with duty.client("housing.officer") as c:
        steps = [("acknowledgement", {}), ("assignment", {"assignee": "housing.colleague"}),
                 ("comments", {"text": "Rang the hostel: a bed held until 5pm."}),
                 ("snooze", {"until": until}),
                 ("resolution", {"outcome": "accommodation-secured", "note": "Bed taken."})]
        for version, (path, body) in enumerate(steps, start=1):
            answer = await c.post(f"/v1/alerts/{alert_id}/{path}", json={"version": version,
                                                                         **body})
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == version + 1
    shown = await alert_of(duty, "housing.colleague", alert_id)
    assert (shown["status"], shown["resolution"], shown["assignee"], shown["version"]) == (
        "resolved", "accommodation-secured", "housing.colleague", 6)
    history = shown["history"]
    assert [h["action"] for h in history] == ["raised", "acknowledged", "assigned",
                                              "commented", "snoozed", "resolved"]
    assert [h["version"] for h in history[1:]] == [1, 2, 3, 4, 5]
    assert history[3]["comment"] == "Rang the hostel: a bed held until 5pm."
    assert history[5]["comment"] == "Bed taken." and history[1]["actor"] == "housing.officer"
    stored = await duty.pool.fetch("SELECT comment FROM alert_history WHERE alert_id = "
                                   "$1::uuid AND comment IS NOT NULL", alert_id)
    assert len(stored) == 2 and all(is_sealed(r["comment"]) for r in stored)
    # the API answered after commit; the outbox is drained to the alerts topic
    for _ in range(100):
        if not await duty.pool.fetchval("SELECT count(*) FROM alert_outbox"):
            break
        await asyncio.sleep(0.1)
    assert await duty.pool.fetchval("SELECT count(*) FROM alert_outbox") == 0
    async with duty.client("housing.officer") as c:
        again = await c.post(f"/v1/alerts/{alert_id}/acknowledgement", json={"version": 6})
    assert again.status_code == 409 and again.json()["current"]["status"] == "resolved"


async def test_two_acknowledgements_at_once_one_wins_the_other_gets_409_with_the_state(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with duty.client("housing.officer") as a, duty.client("housing.colleague") as b:
        answers = await asyncio.gather(
            a.post(f"/v1/alerts/{alert_id}/acknowledgement", json={"version": 1}),
            b.post(f"/v1/alerts/{alert_id}/acknowledgement", json={"version": 1}))
    assert sorted(r.status_code for r in answers) == [200, 409]
    lost = next(r for r in answers if r.status_code == 409).json()
    won = next(r for r in answers if r.status_code == 200).json()
    assert lost["current"]["version"] == 2 and lost["current"]["status"] == "acknowledged"
    assert lost["current"]["acknowledged_by"] == won["acknowledged_by"]
    history = (await alert_of(duty, "housing.officer", alert_id))["history"]
    assert [h["action"] for h in history] == ["raised", "acknowledged"]


async def test_assigning_to_somebody_outside_the_team_and_bad_input_are_refused(
        duty: DutyWorld) -> None:
    alert_id = await duty.raise_alert()
    async with duty.client("housing.officer") as c:
        outsider = await c.post(f"/v1/alerts/{alert_id}/assignment",
                                json={"version": 1, "assignee": "bradford.officer"})
        outcome = await c.post(f"/v1/alerts/{alert_id}/resolution",
                               json={"version": 1, "outcome": "made-up"})
        past = await c.post(f"/v1/alerts/{alert_id}/snooze",
                            json={"version": 1, "until": "2020-01-01T00:00:00Z"})
        extra = await c.post(f"/v1/alerts/{alert_id}/acknowledgement",
                             json={"version": 1, "9434765919": "x"})
        cursor = await c.get("/v1/alerts", params={"cursor": "not-a-cursor"})
    assert [r.status_code for r in (outsider, outcome, past, extra, cursor)] == [422] * 5
    assert "9434765919" not in extra.text
    assert (await alert_of(duty, "housing.officer", alert_id))["version"] == 1


async def test_the_list_is_most_urgent_first_filtered_and_paged_with_a_cursor(
        duty: DutyWorld) -> None:
    raised = [await duty.raise_alert() for _ in range(5)]
    async with duty.client("housing.officer") as c:
        ack = await c.post(f"/v1/alerts/{raised[0]}/acknowledgement", json={"version": 1})
        assert ack.status_code == 200
        seen: list[dict] = []
        cursor = None
        while True:
            page = await c.get("/v1/alerts", params={"limit": 2, "team": OPTIONS,
                               **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            seen += page.json()["alerts"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        only_open = await c.get("/v1/alerts", params={"status": "open", "limit": 200})
    ids = [a["alert_id"] for a in seen]
    assert len(ids) == len(set(ids)) and set(raised) <= set(ids)
    severities = ("critical", "high", "medium", "low")
    keys = [(("open", "acknowledged", "snoozed").index(a["status"]),
             severities.index(a["severity"]), a["due_at"] or a["raised_at"]) for a in seen]
    assert keys == sorted(keys)  # open first, then by severity, then the earliest deadline
    position = ids.index(raised[0])  # acknowledged: after every open one
    assert seen[position]["status"] == "acknowledged"
    assert all(a["status"] != "open" for a in seen[position:])
    assert raised[0] not in {a["alert_id"] for a in only_open.json()["alerts"]}


async def test_a_team_token_works_its_team_only_and_a_cookie_needs_the_csrf_token(
        duty: DutyWorld) -> None:
    from services.alerts import teams
    async with duty.pool.acquire() as conn:
        token = await teams.issue_token(conn, OPTIONS, "control-room", "test")
    alert_id = await duty.raise_alert()
    async with duty.client(token=token) as dispatch:
        listed = await dispatch.get("/v1/alerts")
        ack = await dispatch.post(f"/v1/alerts/{alert_id}/acknowledgement", json={"version": 1})
        other = await dispatch.get("/v1/alerts", params={"team": BRADFORD_OPTIONS})
    assert listed.status_code == 200 and alert_id in listed.text
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "token:control-room"
    assert other.status_code == 403
    session = duty.tokens["housing.officer"]
    async with duty.client() as browser:
        browser.cookies.set("joinedup_session", session)
        read = await browser.get(f"/v1/alerts/{alert_id}")
        forged = await browser.post(f"/v1/alerts/{alert_id}/comments",
                                    json={"version": 2, "text": "forged"})
    assert read.status_code == 200 and forged.status_code == 403
    assert (await alert_of(duty, "housing.officer", alert_id))["version"] == 2
