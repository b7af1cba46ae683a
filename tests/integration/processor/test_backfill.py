"""Onboarding backfill on the real broker and PostgreSQL, the deadline timer on the wall clock.

A mental-health trust joins: it uploads a year of its history in two requests (discharges
first, then the care plans and follow-ups), while another trust has been live all year and a
prison publishes live events for the same people in between, and the timer ticks at every
step. Nothing the later events meet raises an alert; the deadlines the history really missed
are raised once the backfill is finished, as historical alerts no duty team is sent; a live
alert raised meanwhile reaches its team as usual.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from rich.console import Console

from projections.queries import reads as reads_sql
from services.alerts import teams
from services.common.events import AgencyEvent, Contact, Identifier, Source, Transition
from services.common.identifiers import make_nhs_number
from services.common.settings import Settings
from services.operations.backfill_store import backfill_status, finish_backfill, open_backfill
from services.operations.rebuild import Rebuild
from services.processor.bootstrap import Processor
from services.processor.domain.backfill import HISTORICAL_NOTE, BackfillRefused
from services.reads import accounts
from tests.factories import SOURCES
from tests.integration.processor.conftest import publish, register_sources, wait_for

AREA = "E08000035"
JOINING = Source("mh-trust-wakefield", "MENTAL_HEALTH", "RiO", "ward-3", AREA)
LIVE = Source("leeds-cmht", "MENTAL_HEALTH", "SystmOne", "community", AREA)
PRISON = SOURCES["PRISON"]
TEAM = "leeds-cmht/duty"
H = timedelta(hours=1)


def _event(source: Source, event_type: str, payload: Transition | Contact, nhs: str,
           occurred: datetime, recorded: datetime | None = None) -> AgencyEvent:
    return AgencyEvent(str(uuid.uuid4()), event_type, occurred, recorded or occurred + H, source,
                       (Identifier("nhs_number", nhs),), payload)


def _discharge(source: Source, nhs: str, at: datetime, recorded: datetime | None = None
               ) -> AgencyEvent:
    return _event(source, "transition.occurred",
                  Transition(str(uuid.uuid4()), "MENTAL_HEALTH_DISCHARGE"), nhs, at, recorded)


def _contact(source: Source, action: str, nhs: str, at: datetime,
             recorded: datetime | None = None) -> AgencyEvent:
    return _event(source, f"contact.{action}", Contact(str(uuid.uuid4())), nhs, at, recorded)


@dataclass
class Year:
    """The joining trust's year of history, and what the live trust published that year."""

    cut_over: datetime
    discharges: list[AgencyEvent] = field(default_factory=list)       # the first request
    later: list[AgencyEvent] = field(default_factory=list)            # the second request
    live_last_year: list[AgencyEvent] = field(default_factory=list)
    met: list[str] = field(default_factory=list)     # discharges whose deadlines were met
    missed: list[str] = field(default_factory=list)  # discharges nobody followed up
    people: list[str] = field(default_factory=list)


def a_year(cut_over: datetime) -> Year:
    """A discharge a month, each a different person: a third followed up by the trust itself
    (in the second request), a third followed up by the live trust (published that year),
    a third never followed up (both deadlines really missed)."""
    year, rng = Year(cut_over), random.Random(17)
    start = cut_over - timedelta(days=365)
    for month in range(12):
        nhs = make_nhs_number(rng)
        at = start + timedelta(days=30 * month)
        discharge = _discharge(JOINING, nhs, at)
        year.discharges.append(discharge)
        year.people.append(nhs)
        if month % 3 == 2:
            year.missed.append(discharge.event_id)
            continue
        year.met.append(discharge.event_id)
        year.later.append(_contact(JOINING, "care_plan_shared", nhs, at + 2 * H))
        if month % 3 == 0:
            year.later.append(_contact(JOINING, "follow_up", nhs, at + 48 * H))
        else:
            year.live_last_year.append(_contact(LIVE, "follow_up", nhs, at + 24 * H))
    return year


async def tick_when_caught_up(processor: Processor) -> None:
    """What the worker's Faust timer does, once every partition is caught up (so the tick
    considers them all)."""
    partitions = processor.settings.topic_partitions
    for _ in range(300):
        if (processor.admission.caught_up_everywhere()
                and len(processor.intake.caught_up_partitions()) == partitions):
            await processor.deadlines.tick()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never caught up")


async def _alerts(pool: asyncpg.Pool, triggers: list[str]) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT a.alert_id, a.status, a.team_id, h.alert_id IS NOT NULL AS historical, "
        "EXISTS (SELECT 1 FROM team_feed f WHERE f.alert_id = a.alert_id) AS in_feed, "
        "EXISTS (SELECT 1 FROM alert_timer t WHERE t.alert_id = a.alert_id) AS timed, "
        "(SELECT detail FROM alert_history r WHERE r.alert_id = a.alert_id "
        " AND r.action = 'raised') AS noted "
        "FROM alert a LEFT JOIN historical_alert h USING (alert_id) "
        "WHERE a.trigger_event_id = ANY($1::uuid[])", triggers)


@pytest.fixture
async def world(running: Processor, migrated: Settings) -> Processor:
    await register_sources(running.pool, [(JOINING.agency, "MENTAL_HEALTH"),
                                          (LIVE.agency, "MENTAL_HEALTH")])
    async with running.pool.acquire() as conn:  # every alert goes to the live trust's duty team
        await accounts.create_team(conn, LIVE.agency, "duty", "Leeds CMHT duty")
        await teams.set_route(conn, "*", TEAM, "test")
    return running


async def test_a_year_of_history_beside_live_events_alerts_nobody(world: Processor) -> None:
    settings, pool = world.settings, world.pool
    now = datetime.now(UTC).replace(microsecond=0)
    year = a_year(now - 5 * timedelta(minutes=1))
    await publish(settings, year.live_last_year)  # the live trust, a year ago
    await wait_for(pool, f"SELECT count(*) FROM event_archive WHERE source_agency = "
                         f"'{LIVE.agency}'", len(year.live_last_year))

    async with pool.acquire() as conn:
        await open_backfill(conn, JOINING.agency, year.cut_over, "ops.lead")
        with pytest.raises(BackfillRefused):  # one backfill per agency
            await open_backfill(conn, JOINING.agency, year.cut_over, "ops.lead")
    await publish(settings, year.discharges)  # the first request
    await wait_for(pool, f"SELECT count(*) FROM event_archive WHERE source_agency = "
                         f"'{JOINING.agency}'", len(year.discharges))
    await tick_when_caught_up(world)
    # Live events for the same people arrive between the two requests: a prison's contact
    # (no rule's fulfilment) and a late-reported discharge by the live trust (a live alert).
    late = _discharge(LIVE, year.people[0], now - 4 * 24 * H, now)
    live = [_contact(PRISON, "follow_up", nhs, now - H, now) for nhs in year.people]
    await publish(settings, [*live, late])
    await wait_for(pool, f"SELECT count(*) FROM event_archive WHERE source_agency = "
                         f"'{PRISON.agency}'", len(live))
    await tick_when_caught_up(world)
    assert await _alerts(pool, year.met + year.missed) == []  # held: nothing judged yet

    await publish(settings, year.later)  # the second request
    await wait_for(pool, f"SELECT count(*) FROM event_archive WHERE source_agency = "
                         f"'{JOINING.agency}'", len(year.discharges) + len(year.later))
    await tick_when_caught_up(world)
    assert await _alerts(pool, year.met + year.missed) == []
    async with pool.acquire() as conn:
        (status,) = await backfill_status(conn, JOINING.agency)
    assert status.held == 2 * len(year.missed)  # the care plan and the follow-up, each
    assert status.history_applied == len(year.discharges) + len(year.later)

    async with pool.acquire() as conn:
        await finish_backfill(conn, JOINING.agency, "ops.lead")
    await tick_when_caught_up(world)

    assert await _alerts(pool, year.met) == []  # met by the later events: never raised
    missed = await _alerts(pool, year.missed)
    assert len(missed) == 2 * len(year.missed)
    for alert in missed:  # recorded as historical, sent to nobody
        assert alert["historical"] and alert["status"] == "open"
        assert alert["team_id"] is None and not alert["in_feed"] and not alert["timed"]
        assert alert["noted"] == HISTORICAL_NOTE  # its history says so
    person = await pool.fetchval("SELECT person_key FROM alert WHERE alert_id = $1",
                                 missed[0]["alert_id"])
    read = {r["alert_id"]: r["historical"] for r in await pool.fetch(reads_sql.ALERTS, person)}
    assert read[str(missed[0]["alert_id"])] is True  # the read API says so too
    controls = await _alerts(pool, [late.event_id])  # live: its team is told, as ever
    assert len(controls) == 2  # the follow-up and the care plan, both long overdue
    assert all(not c["historical"] and c["team_id"] == TEAM and c["in_feed"]
               and c["noted"] is None for c in controls)
    assert any(c["timed"] for c in controls)  # the critical one escalates if not acknowledged
    async with pool.acquire() as conn:
        (status,) = await backfill_status(conn, JOINING.agency)
    assert (status.held, status.historical_alerts) == (0, len(missed))
    assert status.finished_at is not None and status.state == "finished"

    # A rebuild from the archive decides the same: the same alerts, historical or not.
    rebuild = Rebuild(settings, ["rules"], console=Console(quiet=True))
    await rebuild.run()
    try:
        assert [d for d in await rebuild.check() if d.only_live or d.only_shadow] == []
        assert await pool.fetchval(f'SELECT count(*) FROM "{rebuild.shadow}".historical_alert'
                                   ) == len(missed)
    finally:
        await rebuild.drop()
