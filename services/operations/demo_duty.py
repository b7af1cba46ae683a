"""The demo's duty teams: who works the simulated areas' alerts, and the live part of
`make demo` (the board's address, a member's sign-in, new alerts arriving until Ctrl-C).

Teams are set up before the history is processed, so every alert is routed as it is
raised: each area's housing, mental-health, drug-and-alcohol and leaving-care services
have a duty team for the rule pack's area routes, and the Leeds out-of-hours duty team
takes whatever no route names (the fallback). High and critical alerts left
unacknowledged escalate to it too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import secrets
import signal
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from rich.console import Console

from services.alerts import teams
from services.common.db import create_pool
from services.common.event_log import EventLog
from services.common.events import AgencyEvent, Identifier, Transition
from services.common.identifiers import make_nhs_number
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.reads import accounts
from services.simulation.agencies import AREAS, LEEDS, local

#: rule pack route family -> the service kind whose team works it
FAMILIES = {"housing": "HOUSING", "mental-health": "MENTAL_HEALTH",
            "substance-use": "SUBSTANCE_USE", "leaving-care": "LEAVING_CARE"}
FALLBACK_AGENCY, FALLBACK_SLUG = local(LEEDS, "HOUSING").agency_id, "out-of-hours"
MEMBER = "demo.duty"


@dataclasses.dataclass(frozen=True)
class DemoMember:
    username: str
    password: str
    team_id: str


async def set_up_duty_teams(settings: Settings) -> DemoMember:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            fallback = await accounts.create_team(conn, FALLBACK_AGENCY, FALLBACK_SLUG,
                                                  "Leeds out-of-hours duty")
            await teams.set_route(conn, "*", fallback, "joinedup demo")
            for area in AREAS:
                for family, kind in FAMILIES.items():
                    agency = local(area, kind)
                    team = await accounts.create_team(conn, agency.agency_id, "duty",
                                                      f"{agency.name} duty team")
                    await teams.set_team(conn, team, "joinedup demo", area=area)
                    await teams.set_route(conn, f"{family}:{area}", team, "joinedup demo")
            housing = accounts.team_id(local(LEEDS, "HOUSING").agency_id, "duty")
            password = secrets.token_urlsafe(12)
            await accounts.create_practitioner(conn, MEMBER, local(LEEDS, "HOUSING").agency_id,
                                               housing, "practitioner", password)
            await teams.add_member(conn, fallback, MEMBER, "joinedup demo")
            return DemoMember(MEMBER, password, housing)
    finally:
        await pool.close()


def _release(rng: random.Random) -> AgencyEvent:
    prison = local(LEEDS, "PRISON")
    now = datetime.now(UTC)
    return AgencyEvent(str(uuid.uuid4()), "transition.occurred", now, now, prison.source(),
                       (Identifier("nhs_number", make_nhs_number(rng, "999")),),
                       Transition(f"live-{uuid.uuid4().hex[:8]}", "PRISON_RELEASE",
                                  reason="RELEASED", accommodation_on_leaving="NO_FIXED_ABODE"),
                       prison.sensitivity)


async def _live(settings: Settings, console: Console, every: float) -> None:
    """A release from HMP Leeds with nowhere to go every ``every`` seconds; each alert it
    raises is printed as it reaches its team (and shown on the board at once)."""
    producer = make_producer(settings)
    await producer.start()
    pool = await create_pool(settings, max_size=1)
    rng = random.Random(2026)
    try:
        log = EventLog(producer, settings.topics, settings.subject_keys())
        while True:
            event = _release(rng)
            await (await log.send(event))
            sent = time.monotonic()
            row = await _arrived(pool, event.event_id, sent + 30)
            if row is not None:
                console.print(f"[bold red]alert[/bold red] {row['severity']} "
                              f"{row['title']} -> {row['name']} "
                              f"({(time.monotonic() - sent) * 1000:,.0f} ms after it was sent)")
            await asyncio.sleep(every)
    finally:
        await pool.close()
        await producer.stop()


async def _arrived(pool: asyncpg.Pool, event_id: str, deadline: float) -> asyncpg.Record | None:
    while time.monotonic() < deadline:
        row = await pool.fetchrow(
            "SELECT a.severity, a.title, t.name FROM alert a JOIN team t USING (team_id) "
            "WHERE a.trigger_event_id = $1::uuid", event_id)
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    return None


def keep_running(settings: Settings, console: Console, member: DemoMember,
                 every: float = 20.0) -> None:
    """Until Ctrl-C: the board's address and a member's sign-in, and new alerts arriving."""
    # Ctrl-C or SIGTERM stop it (and the stack, on the way out), however it was started.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    url = f"http://{settings.duty_host}:{settings.duty_port}"
    console.rule("[bold]the duty board[/bold]")
    console.print(f"Open {url}/ and sign in as [bold]{member.username}[/bold] with password "
                  f"[bold]{member.password}[/bold] (a member of Leeds' housing duty team and "
                  "of the out-of-hours team). The alert API is at "
                  f"{url}/docs. A prison release to no fixed abode is sent every "
                  f"{every:.0f} s: watch it arrive on the board. Ctrl-C stops everything.")
    try:
        asyncio.run(_live(settings, console, every))
    except KeyboardInterrupt:
        console.print("stopping...")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
