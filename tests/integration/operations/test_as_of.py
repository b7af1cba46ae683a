"""`joinedup as-of` on the real servers: the person as joinedup knew them at a moment.

The history goes through the live processor (``test_explain.live_world``); the archive's
arrival times are then set as if each event had reached joinedup a minute after it was
recorded, except one that arrived late, so "known at T" can be checked on both clocks:
recorded after T (hidden), recorded before T but archived after it (hidden too)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.operations import investigate
from tests import factories as f
from tests.conftest import Servers
from tests.integration.operations.test_explain import CLI, PLAN, RULE, World, how, live_world
from tests.integration.operations.test_rebuild import _env, _run

pytestmark = pytest.mark.integration

H = timedelta(hours=1)


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[World]:
    made = await live_world(servers)
    try:
        await made.pool.execute(
            "UPDATE event_archive SET archived_at = recorded_at + interval '1 minute'")
        await made.pool.execute(  # the housing follow-up (recorded at 20 h) arrived at 40 h
            "UPDATE event_archive SET archived_at = $2 WHERE event_id = $1::uuid",
            made.events["a_housing"].event_id, f.T0 + 40 * H)
        yield made
    finally:
        await made.pool.close()


async def test_the_view_at_t_hides_what_was_recorded_or_archived_after_t(world: World
                                                                         ) -> None:
    e, person = world.events, world.people["A"]
    plan_alert = await world.pool.fetchval(
        "SELECT expectation_id::text FROM expectation WHERE rule_id = $1 AND person_key = $2",
        PLAN, person)
    for action, at in (("acknowledged", f.T0 + 24.5 * H), ("snoozed", f.T0 + 26 * H)):
        await world.pool.execute(
            "INSERT INTO alert_history (alert_event_id, alert_id, action, at, actor) "
            "VALUES ($1, $2::uuid, $3, $4, 'duty.worker')", uuid.uuid4(), plan_alert, action, at)

    at = f.T0 + 25 * H
    view = await investigate.as_of_person(world.pool, how(world), person, at)
    assert view["events"] == 2
    assert [t["event_id"] for t in view["timeline"]] == [e["a_discharge"].event_id,
                                                         e["a_missed"].event_id]
    [waiting] = view["open_expectations"]  # the 72-hour follow-up, not yet due at T
    assert (waiting["rule_id"], waiting["due_at"]) == (RULE, f.T0 + 72 * H)
    [alert] = view["alerts"]  # the care plan was due at 24 h: raised by T
    assert (alert["alert_id"], alert["rule_id"], alert["raised_at"]) == (
        plan_alert, PLAN, f.T0 + 24 * H)
    assert alert["status"] == "acknowledged"  # the snooze came after T
    assert [a["action"] for a in alert["duty_actions"]] == ["acknowledged"]
    assert [c["service_kind"] for c in view["caseload"]] == ["MENTAL_HEALTH"]

    later = await investigate.as_of_person(world.pool, how(world), person, f.T0 + 45 * H)
    assert {t["event_id"] for t in later["timeline"]} == {
        e[name].event_id for name in ("a_discharge", "a_missed", "a_housing", "a_absence")}
    assert later["alerts"][0]["status"] == "snoozed"

    audited = await world.pool.fetch(
        "SELECT detail FROM access_audit WHERE action = 'as_of' AND person_id = $1::uuid "
        "ORDER BY at", person)
    assert [json.loads(r["detail"])["events"] for r in audited] == [2, 4]


async def test_explain_at_t_folds_only_what_was_known_then(world: World) -> None:
    """At 25 h the housing follow-up was not yet known, so it is no near miss then; the
    72-hour expectation is still waiting."""
    found = await investigate.explain(world.pool, how(world), world.people["A"],
                                      f.T0 + 25 * H, RULE, known_only=True)
    assert found.events == 2
    [x] = found.rules[0].expectations
    assert x.why.startswith("not fired (yet): waiting, due 2026-03-05 09:00 UTC")
    assert [m.event.event_id for m in x.near_misses] == [world.events["a_missed"].event_id]


async def test_the_command_line_shows_the_person_at_t(world: World) -> None:
    code, out = await _run([*CLI, "as-of", "--person", world.people["A"], "--at",
                            (f.T0 + 25 * H).isoformat(), "--by", "investigator", "--json"],
                           _env(world.settings))
    assert code == 0, out
    view = json.loads(out)
    assert view["events"] == 2 and len(view["alerts"]) == 1
    assert not any(number in out for number in world.nhs.values())
    code, out = await _run([*CLI, "as-of", "--person", world.people["A"], "--at",
                            (f.T0 + 25 * H).isoformat(), "--by", "investigator"],
                           _env(world.settings))
    assert code == 0, out
    assert "open expectations" in out and RULE in out and PLAN in out
