"""`joinedup explain` and `joinedup replay-person` on the real servers: a history through the
live processor (broker, admission with the identity step, archive, read models, deadline
timer), then the person's alert explained from their archived events: why it fired (the
deadline passed; each near miss and why it missed, a possible match's follow-up included),
why another person's did not (met), why a rule stayed silent (an excluded release reason).
Every call is audited; no identifier value is ever printed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent, Identifier
from services.common.identifiers import make_nhs_number
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.operations import investigate
from services.operations.investigate import Investigation
from services.processor.bootstrap import build_processor, load_pack
from services.processor.domain.rules.explain import trace_json
from services.processor.opening import Opener
from services.reads import accounts
from services.reads.domain.audit import Caller
from tests import factories as f
from tests.conftest import Servers, make_settings
from tests.integration.operations.test_rebuild import _env, _run
from tests.integration.processor.conftest import publish, register_sources, wait_for
from tests.integration.reads.conftest import read_api_thread

pytestmark = pytest.mark.integration

H = timedelta(hours=1)
RULE = "mh-72h-follow-up"
PLAN = "mh-care-plan-24h"
CLI = (sys.executable, "-m", "services.operations.cli")
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    settings: Settings
    pool: asyncpg.Pool
    nhs: dict[str, str]            # name -> NHS number
    people: dict[str, str]         # name -> person id
    events: dict[str, AgencyEvent]  # name -> event


def history() -> tuple[dict[str, str], dict[str, AgencyEvent]]:
    """A: discharged at T0; a missed contact (10 h) and a housing service's follow-up (20 h)
    do not count; a temporary-absence release is scheduled (the duty to refer does not
    apply). C, whom the index only reports as a possible match for A (one local id shared,
    one strong identifier each), is followed up at 5 h. B: discharged, followed up at 24 h.
    A housing contact at 100 h (B) moves the stream clock past every deadline."""
    rng = random.Random(23)
    nhs = {name: make_nhs_number(rng) for name in "ABC"}
    local = Identifier("local_id", "rio-77")

    def mh(event: AgencyEvent, *also: Identifier) -> AgencyEvent:
        return dataclasses.replace(event, identifiers=(*event.identifiers, *also),
                                   sensitivity="MENTAL_HEALTH")

    events = {
        "a_discharge": mh(f.transition("occurred", "MENTAL_HEALTH_DISCHARGE",
                                       transition_id="mh-a", source="MENTAL_HEALTH",
                                       nhs=nhs["A"], at=f.T0)),
        "c_follow_up": mh(f.contact("follow_up", contact_id="c-c", source="MENTAL_HEALTH",
                                    nhs=nhs["C"], at=f.T0 + 5 * H), local),
        "a_missed": mh(f.contact("missed", contact_id="c-a1", source="MENTAL_HEALTH",
                                 nhs=nhs["A"], at=f.T0 + 10 * H), local),
        "a_housing": f.contact("follow_up", contact_id="c-a2", source="HOUSING",
                               nhs=nhs["A"], at=f.T0 + 20 * H),
        "a_absence": f.transition("scheduled", "PRISON_RELEASE", transition_id="rel-a",
                                  scheduled_for=date(2026, 6, 1),
                                  reason="TEMPORARY_ABSENCE_RELEASE", nhs=nhs["A"],
                                  at=f.T0 + 30 * H),
        "b_discharge": mh(f.transition("occurred", "MENTAL_HEALTH_DISCHARGE",
                                       transition_id="mh-b", source="MENTAL_HEALTH",
                                       nhs=nhs["B"], at=f.T0)),
        "b_follow_up": mh(f.contact("follow_up", contact_id="c-b", source="MENTAL_HEALTH",
                                    nhs=nhs["B"], at=f.T0 + 24 * H)),
        "b_later": f.contact("attended", contact_id="c-b2", source="HOUSING", nhs=nhs["B"],
                             at=f.T0 + 100 * H),
    }
    return nhs, events


async def live_world(servers: Servers) -> World:
    """The history through the live processor, one event at a time where the identity
    step's order matters (C is known before A's event names C's local id)."""
    settings = make_settings(servers, clock="stream")
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    nhs, events = history()
    pool = await create_pool(settings, max_size=5)
    await register_sources(pool, [(s.agency, s.service_kind) for s in f.SOURCES.values()])
    processor = await build_processor(settings, migrate=False)
    task = asyncio.create_task(processor.run())
    try:
        order = list(events.values())
        for i, event in enumerate(order, start=1):
            await publish(settings, [event])
            await wait_for(pool, "SELECT count(*) FROM event_archive", i)
        while await processor.deadlines.tick():
            pass
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    people = {name: await pool.fetchval(
        "SELECT person_id::text FROM person_index_identifier "
        "WHERE scheme = 'nhs_number' AND value = $1", number) for name, number in nhs.items()}
    return World(settings, pool, nhs, people, events)


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[World]:
    made = await live_world(servers)
    try:
        yield made
    finally:
        await made.pool.close()


def how(world: World, by: str = "investigator") -> Investigation:
    settings = world.settings
    return Investigation(load_pack(settings), Opener(KeyRing(settings.key_encryption_key())),
                         Caller.for_operator(by), "investigation")


async def test_explain_gives_the_reasons_for_a_fired_alert_a_met_one_and_a_silent_rule(
        world: World) -> None:
    e, people = world.events, world.people
    assert len(set(people.values())) == 3  # C stayed a possible match, not linked
    now = datetime.now(UTC)
    found = trace_json(await investigate.explain(world.pool, how(world), people["A"], now))
    rules = {r["rule_id"]: r for r in found["rules"]}
    assert found["events"] == 4  # A's own events only: C's follow-up is not folded
    [fired] = rules[RULE]["expectations"]
    assert fired["fired"] and fired["status"] == "alerted"
    assert fired["trigger"]["event_id"] == e["a_discharge"].event_id
    assert fired["why"] == ("fired: the deadline 2026-03-05 09:00 UTC passed with nothing "
                            "matching recorded by then")
    reasons = {m["event"]["event_id"]: m["reason"] for m in fired["near_misses"]}
    assert reasons[e["a_missed"].event_id] == (
        "wrong event type: contact.missed, expected contact.attended or contact.follow_up")
    assert reasons[e["a_housing"].event_id] == (
        "wrong service kind: HOUSING, expected MENTAL_HEALTH")
    assert reasons[e["c_follow_up"].event_id] == (
        f"a different person: unlinked identifier: filed under possible match "
        f"{people['C']} (local_id, nhs_number, from agency mh-trust-leeds); not linked by "
        f"the index")
    silent = rules["prison-release-duty-to-refer"]
    assert not silent["fired"] and silent["expectations"] == []
    [miss] = silent["trigger_misses"]
    assert miss["event"]["event_id"] == e["a_absence"].event_id
    assert miss["reason"].endswith("TEMPORARY_ABSENCE_RELEASE is excluded")

    met = trace_json(await investigate.explain(world.pool, how(world), people["B"], now, RULE))
    [rule] = met["rules"]
    [x] = rule["expectations"]
    assert not x["fired"] and x["status"] == "fulfilled"
    assert x["fulfilled_by"] == e["b_follow_up"].event_id
    assert x["why"].startswith("did not fire: met: contact.follow_up")

    text = json.dumps([found, met])
    assert not any(number in text for number in world.nhs.values())
    assert "rio-77" not in text
    audited = await world.pool.fetch(
        "SELECT person_id::text AS person_id, operator, purpose, detail FROM access_audit "
        "WHERE action = 'explain' ORDER BY at")
    assert [(r["person_id"], r["operator"], r["purpose"]) for r in audited][-2:] == [
        (people["A"], "investigator", "investigation"),
        (people["B"], "investigator", "investigation")]


async def test_the_live_alert_is_the_one_explained(world: World) -> None:
    """The explanation is the engine's own fold: the alert the live pipeline raised has the
    id and raise time the trace gives."""
    found = await investigate.explain(world.pool, how(world), world.people["A"],
                                      datetime.now(UTC), PLAN)
    [x] = found.rules[0].expectations
    row = await world.pool.fetchrow(
        "SELECT alert_id::text AS alert_id, status, raised_at FROM alert WHERE rule_id = $1 "
        "AND person_key = $2", PLAN, world.people["A"])
    assert row is not None
    assert (row["alert_id"], row["raised_at"]) == (x.expectation.expectation_id,
                                                   x.expectation.raised_at)


async def test_the_command_line_explains_replays_and_refuses_in_one_line(world: World
                                                                        ) -> None:
    env = _env(world.settings)
    person = world.people["A"]
    code, out = await _run([*CLI, "explain", "--person", person, "--rule", RULE, "--by",
                            "investigator", "--purpose", "investigation"], env)
    assert code == 0, out
    assert "fired: the deadline 2026-03-05 09:00 UTC passed" in out
    assert "wrong service kind: HOUSING" in out
    assert not any(number in out for number in world.nhs.values())

    code, out = await _run([*CLI, "replay-person", "--person", person, "--by", "ops",
                            "--json"], env)
    assert code == 0, out
    replayed = json.loads(out)
    assert (replayed["events"], replayed["differences"]) == (4, [])

    code, out = await _run([*CLI, "explain", "--person", person, "--rule", "nope", "--by",
                            "investigator", "--purpose", "investigation"], env)
    version = load_pack(world.settings).version
    assert code == 2 and out.strip() == (
        f"joinedup explain: no rule 'nope' in rule pack {version}"), out
    code, out = await _run([*CLI, "explain", "--person", "not-a-uuid", "--by", "x",
                            "--purpose", "audit"], env)
    assert code == 2 and out.strip() == "joinedup explain: a person id is a UUID", out


async def test_replay_person_reports_a_live_row_that_differs_and_writes_nothing(
        world: World) -> None:
    person = world.people["B"]
    later = world.events["b_later"]
    row = await world.pool.fetchrow("DELETE FROM timeline_entry WHERE event_id = $1::uuid "
                                    "RETURNING *", later.event_id)
    assert row is not None
    try:
        counts = await _counts(world.pool)
        who, events, found = await investigate.replay(world.pool, how(world), person,
                                                      datetime.now(UTC))
        assert who == person and events == 3
        assert [(d.read_model, d.key, d.live) for d in found] == [
            ("timeline", f"{later.source.agency}/{later.event_id}", None)]
        assert await _counts(world.pool) == {**counts,
                                             "access_audit": counts["access_audit"] + 1}
    finally:  # put the live row back for the other tests
        columns = list(row.keys())
        await world.pool.execute(
            f"INSERT INTO timeline_entry ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})", *row.values())


async def _counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in (
        "event_archive", "timeline_entry", "caseload", "referral", "expectation", "alert",
        "alert_outbox", "access_audit")}


async def test_the_api_explains_to_operations_staff_only(world: World) -> None:
    async with world.pool.acquire() as conn:
        await accounts.create_team(conn, "leeds-housing", "ops", "operations")
        await accounts.create_practitioner(conn, "ops.lead", "leeds-housing",
                                           accounts.team_id("leeds-housing", "ops"),
                                           "operations", PASSWORD)
        await accounts.create_practitioner(conn, "duty.worker", "leeds-housing",
                                           accounts.team_id("leeds-housing", "ops"),
                                           "practitioner", PASSWORD)
    person = world.people["A"]
    with read_api_thread(world.settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            tokens = {}
            for username in ("ops.lead", "duty.worker"):
                signed = await client.post("/v1/sign-in", json={"username": username,
                                                                "password": PASSWORD})
                assert signed.status_code == 200, signed.text
                tokens[username] = signed.json()["access_token"]
            path = f"/v1/operations/people/{person}/explain"
            query = {"purpose": "investigation", "rule": RULE}
            ok = await client.get(path, params=query,
                                  headers={"Authorization": f"Bearer {tokens['ops.lead']}"})
            assert ok.status_code == 200, ok.text
            [rule] = ok.json()["rules"]
            assert rule["fired"] and rule["expectations"][0]["near_misses"]
            refused = await client.get(
                path, params=query, headers={"Authorization": f"Bearer {tokens['duty.worker']}"})
            assert refused.status_code == 403
            unknown = await client.get(
                f"/v1/operations/people/{person}/explain",
                params={"purpose": "investigation", "rule": "nope"},
                headers={"Authorization": f"Bearer {tokens['ops.lead']}"})
            assert unknown.status_code in (400, 422), unknown.text
            as_of = await client.get(
                f"/v1/operations/people/{person}/as-of",
                params={"purpose": "investigation", "at": datetime.now(UTC).isoformat()},
                headers={"Authorization": f"Bearer {tokens['ops.lead']}"})
            assert as_of.status_code == 200, as_of.text
            view = as_of.json()
            assert view["events"] == 4  # all archived by now; both deadlines long past
            assert {a["rule_id"] for a in view["alerts"]} == {PLAN, RULE}
            assert view["open_expectations"] == []
