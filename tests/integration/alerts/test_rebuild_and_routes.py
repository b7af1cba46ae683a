"""Routes changed apply to new alerts only and are recorded; a rebuild reaches nobody (no
feed entry, no timer) and keeps the duty teams' work when it is compared and switched in."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from services.alerts import actions, teams
from services.alerts.desk import Member
from services.operations.rebuild import Rebuild
from tests.integration.alerts.conftest import (
    BRADFORD_OPTIONS,
    LEEDS,
    MANAGERS,
    OPTIONS,
    DutyWorld,
)
from tests.integration.reads.test_visibility_everywhere import cli

pytestmark = pytest.mark.integration


async def test_a_route_changed_applies_to_new_alerts_only_and_is_recorded(
        duty: DutyWorld) -> None:
    before = await duty.raise_alert()
    async with duty.pool.acquire() as conn:
        await teams.set_route(conn, f"housing:{LEEDS}", MANAGERS, "team.lead")
    try:
        after = await duty.raise_alert()
    finally:
        async with duty.pool.acquire() as conn:
            await teams.set_route(conn, f"housing:{LEEDS}", OPTIONS, "team.lead")
    found = dict(await duty.pool.fetch("SELECT alert_id::text, team_id FROM alert WHERE "
                                       "alert_id = ANY($1::uuid[])", [before, after]))
    assert found == {before: OPTIONS, after: MANAGERS}
    changes = await duty.pool.fetch("SELECT changed_by, action, subject, detail FROM "
                                    "duty_change WHERE changed_by = 'team.lead' ORDER BY seq")
    assert [(c["action"], c["subject"], c["detail"]) for c in changes] == [
        ("route-set", f"housing:{LEEDS}", MANAGERS), ("route-set", f"housing:{LEEDS}", OPTIONS)]
    with pytest.raises(Exception, match="append-only"):
        await duty.pool.execute("DELETE FROM duty_change")
    async with duty.pool.acquire() as conn:
        with pytest.raises(teams.SetUpError, match="circle"):
            await teams.set_team(conn, MANAGERS, "team.lead", escalates_to=OPTIONS)
        with pytest.raises(teams.SetUpError, match="no team"):
            await teams.set_route(conn, "housing:*", "nobody/none", "team.lead")
        with pytest.raises(teams.SetUpError, match="--by"):
            await teams.set_route(conn, "housing:*", OPTIONS, "")


async def test_the_cli_lists_routes_and_refuses_in_one_line(duty: DutyWorld) -> None:
    code, out, err = await cli(duty.settings, "duty", "route", "list")
    assert code == 0, err
    assert BRADFORD_OPTIONS in out and "Bradford housing options" in out
    code, _, err = await cli(duty.settings, "duty", "route", "set", "*", "nobody/none",
                             "--by", "x")
    assert code == 2 and "no team" in err and "Traceback" not in err
    code, out, err = await cli(duty.settings, "duty", "changes")
    assert code == 0 and "route-set" in out, err


async def test_a_rebuild_reaches_nobody_and_keeps_the_duty_teams_work(
        duty: DutyWorld) -> None:
    worked = await duty.raise_alert()
    officer = Member("housing.officer", frozenset([OPTIONS]))
    await duty.desk.act(officer, worked, actions.Acknowledge(1))
    await duty.desk.act(officer, worked, actions.Comment(2, "Spoke to the hostel."))
    await asyncio.sleep(0.5)  # let the processor settle what it is applying
    counts = "SELECT (SELECT count(*) FROM team_feed), (SELECT count(*) FROM alert_timer)"
    feed_before = tuple(await duty.pool.fetchrow(counts))
    rebuild = Rebuild(duty.settings, names=["rules"], console=Console(quiet=True))
    await rebuild.run()
    assert tuple(await duty.pool.fetchrow(counts)) == feed_before
    differences = [d for d in await rebuild.check() if d.only_live or d.only_shadow]
    assert differences == []
    shadow = await duty.pool.fetchrow(
        f'SELECT status, version, acknowledged_by FROM "{rebuild.shadow}".alert '
        "WHERE alert_id = $1::uuid", worked)
    assert tuple(shadow) == ("acknowledged", 3, "housing.officer")
    await duty.desk.act(officer, worked, actions.Assign(3, "housing.colleague"))
    replaced = await rebuild.switch()  # the assignment made meanwhile is carried over too
    live = await duty.pool.fetchrow("SELECT status, version, assignee FROM alert WHERE "
                                    "alert_id = $1::uuid", worked)
    assert tuple(live) == ("acknowledged", 4, "housing.colleague")
    assert tuple(await duty.pool.fetchrow(counts))[0] == feed_before[0] + 1
    await duty.pool.execute(f'DROP SCHEMA "{replaced}" CASCADE')
    comment = await duty.desk.alert(officer, worked)
    assert [h.comment for h in comment.history if h.action == "commented"] == [
        "Spoke to the hostel."]
