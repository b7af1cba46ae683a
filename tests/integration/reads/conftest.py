"""A world to read: the real processor applies a history for several people (the same four
agencies' entries each), practitioners of those agencies have accounts, and the read API
runs on a free port. Built once per module; each test takes people of its own, so the
governance events one test records never touch another's person."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent, Transition
from services.common.kafka import ensure_topics
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.processor.bootstrap import build_processor
from services.reads import accounts
from services.reads.bootstrap import server
from services.stack.ports import free_port
from tests import factories as f
from tests.conftest import Servers, make_settings
from tests.integration.processor.conftest import publish, wait_for
from tests.servers import serving

PEOPLE = 12
PASSWORD = "correct horse battery staple"
#: practitioner username -> (agency, team slug, role)
STAFF = {
    "housing.officer": ("leeds-housing", "options", "practitioner"),
    "housing.admin": ("leeds-housing", "options", "business_support"),
    "probation.officer": ("probation-yh", "ldu-leeds", "practitioner"),
    "probation.other": ("probation-yh", "ldu-bradford", "practitioner"),
    "drugs.worker": ("forward-leeds", "intake", "practitioner"),
    "ig.officer": ("leeds-housing", "options", "information_governance"),
}


def nhs_numbers(n: int) -> list[str]:
    """Valid NHS numbers in the 999 test range, one per person."""
    import random

    from services.common.identifiers import make_nhs_number
    rng = random.Random(15)
    found: list[str] = []
    while len(found) < n:
        number = make_nhs_number(rng, "999")
        if number not in found:
            found.append(number)
    return found


def history(nhs: str) -> list[AgencyEvent]:
    """Four agencies' entries: a prison release to no fixed abode (criminal justice; it
    raises an alert at once), a drug service's
    accepted referral (substance use: restricted), a housing contact (general) and a
    mental-health discharge (restricted; it opens a 72-hour follow-up expectation)."""
    t0 = f.T0
    ref = hashlib.sha256(nhs.encode()).hexdigest()[:10]  # reference ids hold no identifier
    release = dataclasses.replace(
        f.transition("occurred", "PRISON_RELEASE", transition_id=f"rel-{ref}", at=t0,
                     reason="RELEASED", accommodation_on_leaving="NO_FIXED_ABODE", nhs=nhs),
        sensitivity="CRIMINAL_JUSTICE")
    drugs = dataclasses.replace(
        f.referral("accepted", referral_id=f"ref-{ref}", to="SUBSTANCE_USE",
                   source="SUBSTANCE_USE", at=t0 + timedelta(days=1), nhs=nhs),
        sensitivity="SUBSTANCE_USE")
    housing = f.contact("attended", contact_id=f"con-{ref}", source="HOUSING",
                        at=t0 + timedelta(days=2), nhs=nhs)
    discharge = dataclasses.replace(
        f.event("transition.occurred", Transition(f"mh-{ref}", "MENTAL_HEALTH_DISCHARGE"),
                source="MENTAL_HEALTH", at=t0 + timedelta(days=3), nhs=nhs),
        sensitivity="MENTAL_HEALTH")
    return [release, drugs, housing, discharge]


@dataclass
class World:
    settings: Settings
    pool: asyncpg.Pool
    url: str
    people: list[str]                       # person ids, one handed to each test that asks
    nhs: dict[str, str]                     # person id -> NHS number
    events: dict[str, list[AgencyEvent]]    # person id -> their history
    agency_tokens: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)   # username -> bearer token
    ids: dict[str, str] = field(default_factory=dict)      # username -> practitioner id
    _next: int = 0

    def person(self) -> str:
        person = self.people[self._next]
        self._next += 1
        return person

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    def as_user(self, username: str) -> httpx.AsyncClient:
        return self.client(self.tokens[username])


@contextmanager
def read_api_thread(settings: Settings) -> Iterator[str]:
    port = free_port()
    with serving(server(settings, migrate=False, port=port, log_level="warning"),
                 "read API", port) as url:
        yield url


async def build_world(servers: Servers) -> tuple[Settings, dict[str, str], dict[str, str],
                                                  dict[str, list[AgencyEvent]]]:
    # The stream clock: the discharges' 72-hour follow-ups stay open (due after the last
    # event), whatever today's date is.
    settings = make_settings(servers, clock="stream")
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    tokens = {s.agency: await create_agency(settings, s.agency, s.agency, s.service_kind)
              for s in f.SOURCES.values()}
    numbers = nhs_numbers(PEOPLE)
    events = {n: history(n) for n in numbers}
    processor = await build_processor(settings, migrate=False)
    task = asyncio.create_task(processor.run())
    try:
        await publish(settings, [e for n in numbers for e in events[n]])
        await wait_for(processor.pool, "SELECT count(*) FROM timeline_entry", 4 * PEOPLE)
        await wait_for(processor.pool, "SELECT count(*) FROM expectation WHERE status = 'open'",
                       PEOPLE)
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    pool = await create_pool(settings, max_size=2)
    try:
        people = {n: await pool.fetchval(
            "SELECT person_id::text FROM person_index_identifier "
            "WHERE scheme = 'nhs_number' AND value = $1", n) for n in numbers}
    finally:
        await pool.close()
    return settings, tokens, people, {people[n]: events[n] for n in numbers}


@pytest.fixture(scope="module")
async def world(servers: Servers) -> AsyncIterator[World]:
    settings, agency_tokens, people, events = await build_world(servers)
    pool = await create_pool(settings, max_size=5)
    try:
        async with pool.acquire() as conn:
            teams = {(a, t) for a, t, _ in STAFF.values()}
            for agency, team in sorted(teams):
                await accounts.create_team(conn, agency, team, f"{agency} {team}")
            ids = {}
            for username, (agency, team, role) in STAFF.items():
                made = await accounts.create_practitioner(
                    conn, username, agency, accounts.team_id(agency, team), role, PASSWORD)
                ids[username] = made.practitioner_id
        with read_api_thread(settings) as url:
            world = World(settings, pool, url, list(people.values()),
                          {p: n for n, p in people.items()}, events, agency_tokens, ids=ids)
            async with world.client(None) as anonymous:
                for username in STAFF:
                    answer = await anonymous.post("/v1/sign-in", json={
                        "username": username, "password": PASSWORD})
                    assert answer.status_code == 200, answer.text
                    world.tokens[username] = answer.json()["access_token"]
            yield world
    finally:
        await pool.close()
