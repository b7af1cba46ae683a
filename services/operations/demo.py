"""`joinedup demo` (`make demo`): the whole job on the embedded stack, start to finish.

Starts PostgreSQL and Tansu (unless configured), the real processor worker and the duty
service, sets up duty teams for the simulated areas, streams a simulated population through
the agency topic, waits until every event is applied or parked, then prints what the duty
teams and practitioners would see. Then (unless ``--once``) it keeps running: the duty
board's address and a member's sign-in are printed, and a new alert arrives every 20 s
until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from rich.console import Console
from rich.progress import Progress

from services.common.db import create_pool
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.operations import simulate, views
from services.operations.demo_duty import keep_running, set_up_duty_teams
from services.operations.stack import prepare, services_running
from services.reads import accounts
from services.reads.domain.audit import Caller
from services.reads.domain.governance import AgreementMade
from services.reads.service import PersonReads, person_reads
from services.simulation.agencies import AGENCIES, PROBATION
from services.stack.local import local_stack

_SETTLED = "SELECT (SELECT count(*) FROM event_archive) + (SELECT count(*) FROM dead_letter)"
# Alerts reach the read model through the alerts topic: settled when the outbox is empty
# and every alert event written has been projected.
_ALERTS_SETTLED = "SELECT count(*) FROM alert_outbox"


def run_demo(settings: Settings, people: int, months: int, seed: int, once: bool = False
             ) -> int:
    console = Console(width=None if sys.stdout.isatty() else 150)
    data_dir = settings.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    settings = settings.model_copy(update={"data_dir": data_dir})
    # The demo's own lines (and its libraries') go to a file as JSON, scrubbed like every
    # process's: the terminal is for the report.
    configure_logging(settings.log_level, settings.log_json,
                      library_level=settings.log_library_level,
                      file=data_dir / "logs" / "demo.log")
    with local_stack(data_dir, settings.database_url, settings.kafka_bootstrap,
                     durable=False) as stack:
        for line in stack.started:
            console.print(f"[green]started[/green] {line}")
        settings = prepare(settings, stack)
        asyncio.run(simulate.register_simulated_agencies(settings))
        member = asyncio.run(set_up_duty_teams(settings))
        events = simulate.generate(seed, people, months, datetime(2026, 1, 5, tzinfo=UTC))
        agencies = len({e.source.agency for e in events})
        console.print(f"simulated {len(events)} events for {people} people from "
                      f"{agencies} agencies over {months} months (seed {seed})")
        # The history is published first, as the agencies' systems would have sent it over
        # those months; the worker then works through it. (Published while the worker runs,
        # the deadline timer would raise, on today's clock, alerts that events still on their
        # way would have met, and resolve them as "reported late".)
        asyncio.run(simulate.publish_events(settings, events))
        with services_running(stack, ["worker", "duty serve"], JOINEDUP_LOG_LEVEL="WARNING",
                              JOINEDUP_DATA_DIR=str(data_dir)):
            started = time.monotonic()
            asyncio.run(_wait_until_applied(settings, len(events), console))
            time.sleep(3.0)  # the deadline timer and the alert projector run every second
            console.print(f"processed in {time.monotonic() - started:.1f}s")
            asyncio.run(_report(settings, console))
            if not once:
                keep_running(settings, console, member)
    return 0


async def _wait_until_applied(settings: Settings, expected: int, console: Console) -> None:
    pool = await create_pool(settings, max_size=1)
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("processing", total=expected)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                done = await pool.fetchval(_SETTLED)
                progress.update(task, completed=done)
                if done >= expected:
                    return
                await asyncio.sleep(0.5)
        raise TimeoutError("the processor did not catch up within 5 minutes")
    finally:
        await pool.close()


async def _report(settings: Settings, console: Console) -> None:
    pool = await create_pool(settings, max_size=3)
    try:
        async with pool.acquire() as conn:
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM event_archive) AS events,"
                " (SELECT count(DISTINCT person_key) FROM timeline_entry) AS people,"
                " (SELECT count(*) FROM referral) AS referrals,"
                " (SELECT count(*) FROM dead_letter) AS parked")
            console.print(f"[bold]{counts['events']}[/bold] events on "
                          f"[bold]{counts['people']}[/bold] timelines, "
                          f"{counts['referrals']} referrals tracked, {counts['parked']} parked")
            await views.show_alert_summary(conn, console)
            people = await views.people_with_alerts(conn, 3)
            caller = await _demo_reader(conn, person_reads(pool, settings))
        console.print(
            f"[bold]Each person as a probation practitioner ({caller.reader.agency}) sees "
            "them:[/bold] criminal-justice, health and general entries of the prisons and "
            "housing teams under a sharing agreement; restricted entries (mental health, "
            "substance use, domestic abuse) as Confidential unless the person consents, the "
            "lead professional grants access or the service discloses one. Every read is in "
            "the access audit (joinedup audit --person ID --by NAME).")
        reads = person_reads(pool, settings)
        for n, person in enumerate(people, 1):
            await views.show_person(reads, caller, person, "direct_care", console,
                                    f"simulated person #{n}")
    finally:
        await pool.close()


async def _demo_reader(conn: asyncpg.Connection, reads: PersonReads) -> Caller:
    """A probation practitioner, and an agreement letting probation, the prisons and the
    housing teams share what is not restricted."""
    agency = PROBATION.agency_id
    team = await accounts.create_team(conn, agency, "pdu", "Probation delivery unit, North")
    practitioner = await accounts.create_practitioner(
        conn, "demo.probation", agency, team, "practitioner", secrets.token_urlsafe(24))
    parties = {agency, *(a.agency_id for a in AGENCIES
                         if a.service_kind in ("PRISON", "HOUSING"))}
    await reads.record(
        Caller.for_operator("joinedup demo"), None,
        AgreementMade(str(uuid.uuid4()), frozenset(parties),
                      frozenset({"GENERAL", "CRIMINAL_JUSTICE", "HEALTH"}),
                      datetime(2026, 1, 1, tzinfo=UTC), reference="DEMO-ISA-1"),
        purpose="audit")
    return Caller(practitioner.reader, "practitioner", "cli")
