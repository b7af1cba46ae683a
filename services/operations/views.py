"""Read-side views for the CLI: a person's timeline, referrals, caseload and alerts as rich
tables, read through the same filtered, audited path as the read API
(``services/reads/service.py``), as the reader the operator names."""

from __future__ import annotations

import asyncpg
from rich.console import Console
from rich.table import Table

from projections.queries import alerts as alerts_sql
from projections.queries import timeline as sql
from services.reads.domain.audit import Caller
from services.reads.domain.visibility import CONFIDENTIAL
from services.reads.service import PersonReads


async def busiest_people(conn: asyncpg.Connection, limit: int) -> list[str]:
    return [r["person_key"] for r in await conn.fetch(sql.BUSIEST_PEOPLE, limit)]


async def people_with_alerts(conn: asyncpg.Connection, limit: int) -> list[str]:
    return [r["person_key"] for r in await conn.fetch(alerts_sql.PEOPLE_WITH_MOST_ALERTS, limit)]


async def show_alert_summary(conn: asyncpg.Connection, console: Console) -> None:
    """Counts only: no person's records."""
    table = Table(title="Alerts being worked, by duty team and severity")
    for column in ("duty team", "severity", "alerts"):
        table.add_column(column)
    for row in await conn.fetch(alerts_sql.OPEN_ALERTS_BY_TEAM):
        table.add_row(row["team"], row["severity"], str(row["alerts"]))
    console.print(table)
    rules = await conn.fetch(alerts_sql.ALERTS_BY_RULE)
    console.print("Alerts raised by rule: " + ", ".join(
        f"{r['rule_id']} {r['raised']} ({r['resolved']} resolved)" for r in rules))


async def show_person(reads: PersonReads, caller: Caller, person_id: str, purpose: str,
                      console: Console, label: str) -> None:
    """Print one person's cross-agency picture as ``caller`` may see it (every read audited).
    `label` is what the operator typed or a pseudonymous reference."""
    entries, cursor = [], None
    while True:
        page = await reads.timeline(caller, person_id, purpose, 500, cursor)
        entries.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    who = caller.reader.agency + (f" ({caller.reader.role.replace('_', ' ')})")
    withheld = sum(1 for e in entries if e.confidential)
    table = Table(title=f"Timeline for {label} as {who} sees it ({len(entries)} events, "
                        f"{withheld} confidential)")
    for column in ("occurred", "agency", "service", "event", "what happened"):
        table.add_column(column)
    for e in entries:
        f = e.fields
        if e.confidential:
            table.add_row(f"{e.on:%Y-%m-%d}", "", e.service_kind.lower(), "",
                          f"[dim]{CONFIDENTIAL}[/dim]")
        else:
            table.add_row(f["occurred_at"].strftime("%Y-%m-%d %H:%M"), f["agency"],
                          e.service_kind.lower(), f["event_type"], f["summary"])
    console.print(table)
    summary = await reads.summary(caller, person_id, purpose)
    working = [(f"{c.fields['agency']} ({c.service_kind.lower()}) since "
                f"{c.fields['since']:%Y-%m-%d}") if not c.confidential
               else f"a {c.service_kind.lower()} service ({CONFIDENTIAL.lower()})"
               for c in summary.caseload if c.confidential or c.fields["active"]]
    console.print("[bold]Working with them now:[/bold] " + ("; ".join(working) or "nobody"))
    lead = summary.lead_professional
    console.print("[bold]Lead professional:[/bold] " + (
        f"{lead.username} ({lead.agency_id}) since {lead.since:%Y-%m-%d}" if lead else "none"))
    for a in await reads.alerts(caller, person_id, purpose):
        if a.confidential:
            console.print(f"  [bold red]alert[/bold red] {CONFIDENTIAL} ({a.on:%Y-%m-%d}, "
                          f"{a.service_kind.lower()})")
            continue
        f = a.fields
        state = (f"resolved {f['resolved_at']:%Y-%m-%d}: {f['resolution']}"
                 if f["status"] == "resolved" else "OPEN")
        console.print(f"  [bold red]alert[/bold red] {f['severity']} -> {f['duty_team']}: "
                      f"{f['title']} (raised {f['raised_at']:%Y-%m-%d %H:%M}; {state})")
    for r in await reads.referrals(caller, person_id, purpose):
        if r.confidential:
            console.print(f"  referral: {CONFIDENTIAL} ({r.on:%Y-%m-%d})")
            continue
        f = r.fields
        console.print(f"  referral {f['referral_id']}: {f['from_agency']} -> {f['to_agency']} "
                      f"({f['to_service_kind'].lower()}): [bold]{f['status']}[/bold] "
                      f"since {f['status_at']:%Y-%m-%d}")
