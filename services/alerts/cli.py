"""`joinedup duty ...`: the duty service, and setting up duty teams (routes, areas and
escalation, members, dispatch tokens), each change recorded with who made it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg
from rich.console import Console
from rich.table import Table

from projections.queries import duty as sql
from services.alerts import teams
from services.common.commands import Work, run_on_database
from services.common.settings import Settings

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    duty = sub.add_parser("duty", help="duty teams: the alert API, stream and board; routes, "
                                       "members, escalation")
    verbs = duty.add_subparsers(dest="verb", required=True)
    verbs.add_parser("serve", help="serve the alert API, team streams and the duty board, "
                                   "and run escalation (until Ctrl-C)")
    route = verbs.add_parser("route", help="where a rule's alerts go")
    route.add_argument("action", choices=("set", "remove", "list"), help="what to do")
    route.add_argument("route", nargs="?", help="what the rule names ('housing:E08000035'), "
                       "'<service>:*' for every area of a service, '*' for the fallback team")
    route.add_argument("team", nargs="?", help="the team id ('<agency>/<team>'), for set")
    team = verbs.add_parser("team", help="a team's area, display name and escalation")
    team.add_argument("team", help="the team id")
    team.add_argument("--area", help="the area it covers (an ONS code); '' clears it")
    team.add_argument("--name", help="its display name")
    team.add_argument("--escalates-to", help="the next tier's team id ('none': the last tier)")
    member = verbs.add_parser("member", help="add or remove a team member")
    member.add_argument("action", choices=("add", "remove"), help="what to do")
    member.add_argument("team", help="the team id ('<agency>/<team>')")
    member.add_argument("username", help="the practitioner")
    members = verbs.add_parser("members", help="a team's members")
    members.add_argument("team", help="the team id")
    token = verbs.add_parser("token", help="a dispatch system's token for a team")
    token.add_argument("action", choices=("issue", "revoke"), help="what to do")
    token.add_argument("team", help="the team id")
    token.add_argument("label", help="what uses it, e.g. 'control-room'")
    changes = verbs.add_parser("changes", help="every change to routes and teams, newest "
                                               "first")
    changes.add_argument("--limit", type=int, default=50, help="how many (default: 50)")
    for p in (route, team, member, token):
        p.add_argument("--by", default="", help="who is making the change (recorded; "
                                                "required for changes)")

    def handle(args: argparse.Namespace) -> int:
        current = settings()
        if args.verb == "serve":
            from services.alerts.bootstrap import serve
            asyncio.run(serve(current))
            return 0
        return _run(f"duty {args.verb}", lambda pool: _VERBS[args.verb](pool, args), current)

    duty.set_defaults(handler=handle)


def _run(name: str, work: Work, settings: Settings) -> int:
    return run_on_database(name, work, settings, (teams.SetUpError,))


async def _route(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    async with pool.acquire() as conn:
        if args.action == "list":
            table = Table(title="routes ('*': the fallback team)")
            for column in ("route", "team", "name", "changed", "by"):
                table.add_column(column)
            for r in await conn.fetch(sql.ROUTES):
                table.add_row(r["route"], r["team_id"], r["name"],
                              f"{r['changed_at']:%Y-%m-%d %H:%M}", r["changed_by"])
            Console().print(table)
            if await conn.fetchval(sql.FALLBACK_TEAM) is None:
                Console(stderr=True).print("no fallback team: set one with "
                                           "`joinedup duty route set '*' TEAM --by NAME`")
            return 0
        if not args.route:
            raise teams.SetUpError("name the route")
        if args.action == "set":
            if not args.team:
                raise teams.SetUpError("name the team")
            await teams.set_route(conn, args.route, args.team, args.by)
            Console().print(f"route {args.route} -> {args.team} (new alerts)")
        else:
            await teams.remove_route(conn, args.route, args.by)
            Console().print(f"route {args.route} removed")
    return 0


async def _team(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    none = args.escalates_to is not None and args.escalates_to.lower() == "none"
    async with pool.acquire() as conn:
        await teams.set_team(conn, args.team, args.by, area=args.area, name=args.name,
                             escalates_to=None if none else args.escalates_to,
                             no_escalation=none)
    Console().print(f"team {args.team} updated")
    return 0


async def _member(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    async with pool.acquire() as conn:
        if args.action == "add":
            await teams.add_member(conn, args.team, args.username, args.by)
        else:
            await teams.remove_member(conn, args.team, args.username, args.by)
    Console().print(f"{args.username}: {args.action} {args.team} done")
    return 0


async def _members(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    table = Table(title=f"members of {args.team}")
    table.add_column("username")
    table.add_column("role")
    for r in await pool.fetch(sql.MEMBERS, args.team):
        table.add_row(r["username"], r["role"])
    Console().print(table)
    return 0


async def _token(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    async with pool.acquire() as conn:
        if args.action == "issue":
            token = await teams.issue_token(conn, args.team, args.label, args.by)
            Console(stderr=True).print("the token (shown once; keep it secret):")
            sys.stdout.write(token + "\n")
        else:
            await teams.revoke_token(conn, args.team, args.label, args.by)
            Console().print(f"tokens labelled {args.label} revoked")
    return 0


async def _changes(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    table = Table(title="changes to duty teams, newest first")
    for column in ("when", "by", "change", "subject", "detail"):
        table.add_column(column)
    for r in await pool.fetch(sql.CHANGES, args.limit):
        table.add_row(f"{r['changed_at']:%Y-%m-%d %H:%M:%S}", r["changed_by"], r["action"],
                      r["subject"], r["detail"])
    Console().print(table)
    return 0


_VERBS: dict[str, Callable[[asyncpg.Pool, argparse.Namespace], Awaitable[int]]] = {
    "route": _route, "team": _team, "member": _member, "members": _members, "token": _token,
    "changes": _changes,
}
