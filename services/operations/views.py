"""Read-side views for the CLI: a person's timeline, referrals and caseload, as rich tables."""

from __future__ import annotations

import asyncpg
from rich.console import Console
from rich.table import Table

from projections.queries import alerts as alerts_sql
from projections.queries import identity as identity_sql
from projections.queries import timeline as sql


async def find_person(conn: asyncpg.Connection, scheme: str, value: str) -> str | None:
    """The person the person index says holds the identifier (services/identity)."""
    return await conn.fetchval(identity_sql.PERSON_BY_IDENTIFIER, scheme, value)


async def busiest_people(conn: asyncpg.Connection, limit: int) -> list[str]:
    return [r["person_key"] for r in await conn.fetch(sql.BUSIEST_PEOPLE, limit)]


async def people_with_alerts(conn: asyncpg.Connection, limit: int) -> list[str]:
    return [r["person_key"] for r in await conn.fetch(alerts_sql.PEOPLE_WITH_MOST_ALERTS, limit)]


async def show_alert_summary(conn: asyncpg.Connection, console: Console) -> None:
    table = Table(title="Open alerts by duty team and severity")
    for column in ("duty team", "severity", "open alerts"):
        table.add_column(column)
    for row in await conn.fetch(alerts_sql.OPEN_ALERTS_BY_TEAM):
        table.add_row(row["duty_team"], row["severity"], str(row["alerts"]))
    console.print(table)
    rules = await conn.fetch(alerts_sql.ALERTS_BY_RULE)
    console.print("Alerts raised by rule: " + ", ".join(
        f"{r['rule_id']} {r['raised']} ({r['resolved']} resolved)" for r in rules))


async def show_person(conn: asyncpg.Connection, person_key: str, console: Console,
                      label: str) -> None:
    """Print one person's cross-agency picture. `label` is what the operator typed or a
    pseudonymous reference: the person key itself is personal data."""
    entries = await conn.fetch(sql.TIMELINE, person_key)
    table = Table(title=f"Timeline for {label} ({len(entries)} events)", show_lines=False)
    for column in ("occurred", "agency", "service", "event", "what happened"):
        table.add_column(column)
    for e in entries:
        table.add_row(e["occurred_at"].strftime("%Y-%m-%d %H:%M"), e["source_agency"],
                      e["service_kind"].lower(), e["event_type"], e["summary"])
    console.print(table)
    caseload = await conn.fetch(sql.CASELOAD, person_key)
    working = [f"{r['agency']} ({r['service_kind'].lower()}) since {r['since']:%Y-%m-%d}"
               for r in caseload if r["active"]]
    console.print("[bold]Working with them now:[/bold] " + ("; ".join(working) or "nobody"))
    for a in await conn.fetch(alerts_sql.ALERTS_FOR_PERSON, person_key):
        state = (f"resolved {a['resolved_at']:%Y-%m-%d}: {a['resolution']}"
                 if a["status"] == "resolved" else "OPEN")
        if a["evidence_count"]:
            state += f"; {a['evidence_count']} later events joined it"
        console.print(f"  [bold red]alert[/bold red] {a['severity']} -> {a['duty_team']}: "
                      f"{a['title']} (raised {a['raised_at']:%Y-%m-%d %H:%M}; {state})")
    referrals = await conn.fetch(sql.REFERRALS, person_key)
    for r in referrals:
        console.print(f"  referral {r['referral_id']}: {r['from_agency']} -> {r['to_agency']} "
                      f"({r['to_service_kind'].lower()}): [bold]{r['status']}[/bold] "
                      f"since {r['status_at']:%Y-%m-%d}")
