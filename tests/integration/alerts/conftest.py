"""A duty world: the real processor raising alerts from published events, duty teams with
routes, escalation and members, and the duty service (API, streams, board) on a free port
with a test clock for its timers. Built once per module; each test raises alerts of its
own (a new person per alert), so tests never work on each other's alerts."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from services.alerts import teams
from services.alerts.bootstrap import server
from services.alerts.desk import DutyDesk
from services.alerts.read_model import LiveDelivery
from services.common.db import create_pool, wait_and_migrate
from services.common.identifiers import make_nhs_number
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.ingest.credentials import create_agency
from services.processor.bootstrap import build_processor
from services.reads import accounts
from services.stack.ports import free_port
from tests import factories as f
from tests.conftest import Servers, make_settings
from tests.integration.alerts.receiver import receiver  # noqa: F401 (a fixture)
from tests.integration.processor.conftest import publish
from tests.servers import serving

PASSWORD = "correct horse battery staple"
LEEDS, BRADFORD, NOWHERE = "E08000035", "E08000032", "E06000014"
OPTIONS, MANAGERS, OUT_OF_HOURS = ("leeds-housing/options", "leeds-housing/managers",
                                   "leeds-housing/out-of-hours")
BRADFORD_OPTIONS = "bradford-housing/options"
#: team id -> (display name, area)
TEAMS = {OPTIONS: ("Leeds housing options", LEEDS),
         MANAGERS: ("Leeds housing duty managers", LEEDS),
         OUT_OF_HOURS: ("Leeds out-of-hours duty", None),
         BRADFORD_OPTIONS: ("Bradford housing options", BRADFORD)}
#: username -> team
STAFF = {"housing.officer": OPTIONS, "housing.colleague": OPTIONS,
         "housing.manager": MANAGERS, "ooh.officer": OUT_OF_HOURS,
         "bradford.officer": BRADFORD_OPTIONS}


class HandClock:
    """The duty timers' wall clock, moved by the test (read from the server's thread)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class DutyWorld:
    settings: Settings
    pool: asyncpg.Pool
    url: str
    clock: HandClock
    desk: DutyDesk                                   # on the test's loop, same clock
    tokens: dict[str, str] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def client(self, username: str | None = None, token: str | None = None
               ) -> httpx.AsyncClient:
        bearer = token or (self.tokens[username] if username else None)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    def nhs_number(self) -> str:
        rng = random.Random(16_000 + next(self._numbers))
        return make_nhs_number(rng, "999")

    async def raise_alert(self, area: str = LEEDS) -> str:
        """Publish a prison release to no fixed abode from ``area``: an immediate alert."""
        nhs = self.nhs_number()
        source = dataclasses.replace(f.SOURCES["PRISON"], area=area)
        release = dataclasses.replace(
            f.transition("occurred", "PRISON_RELEASE", transition_id=f"rel-{nhs[-6:]}",
                         at=datetime.now(UTC) - timedelta(minutes=5), reason="RELEASED",
                         accommodation_on_leaving="NO_FIXED_ABODE", nhs=nhs),
            source=source, sensitivity="CRIMINAL_JUSTICE")
        await publish(self.settings, [release])
        return await self.alert_for(release.event_id)

    async def alert_for(self, trigger_event_id: str, timeout: float = 60) -> str:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = await self.pool.fetchval(
                "SELECT alert_id::text FROM alert WHERE trigger_event_id = $1::uuid "
                "AND rule_id = 'prison-release-no-settled-accommodation'", trigger_event_id)
            if found is not None:
                return str(found)
            await asyncio.sleep(0.05)
        raise AssertionError("no alert was raised")


async def set_up_teams(settings: Settings, pool: asyncpg.Pool) -> None:
    await create_agency(settings, "bradford-housing", "Bradford housing", "HOUSING")
    async with pool.acquire() as conn:
        for team_id, (name, area) in TEAMS.items():
            agency, slug = team_id.split("/")
            await accounts.create_team(conn, agency, slug, name)
            await teams.set_team(conn, team_id, "test", area=area or "")
        await teams.set_team(conn, OPTIONS, "test", escalates_to=MANAGERS)
        await teams.set_route(conn, f"housing:{LEEDS}", OPTIONS, "test")
        await teams.set_route(conn, f"housing:{BRADFORD}", BRADFORD_OPTIONS, "test")
        await teams.set_route(conn, "*", OUT_OF_HOURS, "test")
        for username, team_id in STAFF.items():
            await accounts.create_practitioner(conn, username, team_id.split("/")[0],
                                               team_id, "practitioner", PASSWORD)


@pytest.fixture(scope="module")
async def duty(servers: Servers) -> AsyncIterator[DutyWorld]:
    settings = make_settings(servers)
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    for source in f.SOURCES.values():
        await create_agency(settings, source.agency, source.agency, source.service_kind)
    pool = await create_pool(settings, max_size=5)
    await set_up_teams(settings, pool)
    processor = await build_processor(settings, migrate=False)
    running = asyncio.create_task(processor.run())
    clock = HandClock()
    port = free_port()
    desk = DutyDesk(pool, KeyRing(settings.key_encryption_key()),
                    LiveDelivery.from_settings(settings, clock), None, clock)
    try:
        with serving(server(settings, migrate=False, timers=False, clock=clock, port=port,
                            log_level="warning"), "duty service", port) as url:
            world = DutyWorld(settings, pool, url, clock, desk)
            async with world.client() as anonymous:
                for username in STAFF:
                    answer = await anonymous.post("/v1/sign-in", json={
                        "username": username, "password": PASSWORD})
                    assert answer.status_code == 200, answer.text
                    world.tokens[username] = answer.json()["access_token"]
            yield world
    finally:
        processor.stopping.set()
        await asyncio.wait_for(running, 30)
        await processor.close()
        await pool.close()
