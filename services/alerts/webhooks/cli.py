"""`joinedup webhook add|list|rotate|enable|disable|deliveries|redrive`: a duty team's webhook
endpoints, found by services/operations/cli.py. The dispatcher that sends them runs in the
duty service."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from rich.console import Console
from rich.table import Table

from projections.queries import webhooks as q
from services.alerts.webhooks import endpoints
from services.alerts.webhooks.endpoints import DEFAULT_ACTIONS, FEED_ACTIONS, WebhookError
from services.common.commands import Work, run_on_database
from services.common.settings import Settings

SettingsFactory = Callable[[], Settings]
STATUSES = ("pending", "delivered", "dead", "cancelled")


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    webhook = sub.add_parser("webhook", help="duty teams' webhook endpoints (signed, retried)")
    verbs = webhook.add_subparsers(dest="verb", required=True)
    add = verbs.add_parser("add", help="register an endpoint for a team; prints its secret once")
    add.add_argument("team", help="the team's id (agency/team)")
    add.add_argument("url", help="where to POST (https:// in production)")
    add.add_argument("--signal-only", action="store_true",
                     help="send only the alert id, action, version and link (no alert details)")
    add.add_argument("--actions", nargs="+", metavar="ACTION",
                     help=f"feed actions to send (default: {' '.join(DEFAULT_ACTIONS)}; of "
                          f"{' '.join(FEED_ACTIONS)}; commas work too)")
    listing = verbs.add_parser("list", help="endpoints, their state and what is waiting")
    listing.add_argument("--team", help="only this team's")
    rotate = verbs.add_parser("rotate", help="a new secret; the old one signs on for the overlap")
    rotate.add_argument("endpoint", help="the endpoint id (joinedup webhook list)")
    rotate.add_argument("--overlap-hours", type=float, default=24.0,
                        help="how long the old secret keeps signing (default: %(default)g)")
    enable = verbs.add_parser("enable", help="send again, from now on")
    enable.add_argument("endpoint", help="the endpoint id")
    disable = verbs.add_parser("disable", help="stop sending; pending deliveries are cancelled")
    disable.add_argument("endpoint", help="the endpoint id")
    disable.add_argument("--reason", default="disabled by an operator",
                         help="why (recorded with the change)")
    deliveries = verbs.add_parser("deliveries", help="an endpoint's deliveries, newest first")
    deliveries.add_argument("endpoint", help="the endpoint id")
    deliveries.add_argument("--status", choices=STATUSES, help="only these (dead: the dead letter)")
    deliveries.add_argument("--limit", type=int, default=50, help="how many, newest first")
    redrive = verbs.add_parser("redrive", help="a dead delivery back to pending, due now")
    redrive.add_argument("delivery", help="the dead delivery's id (its webhook-id)")
    for changing in (add, rotate, enable, disable, redrive):
        changing.add_argument("--by", required=True,
                              help="who is making the change (the duty teams' change log)")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            async with pool.acquire() as conn:
                return await _VERBS[args.verb](conn, args, current)
        return _run(f"webhook {args.verb}", work, current)

    webhook.set_defaults(handler=handle)


def _run(name: str, work: Work, settings: Settings) -> int:
    return run_on_database(name, work, settings, (WebhookError,))


def _say(text: str) -> None:
    """Command output for the operator (stdout), not a log line."""
    sys.stdout.write(text + "\n")


async def _add(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings) -> int:
    actions = [a for given in args.actions for a in given.split(",")] if args.actions \
        else list(DEFAULT_ACTIONS)
    endpoint_id, secret = await endpoints.add_endpoint(
        conn, settings.key_encryption_key(), args.team, args.url, args.by,
        signal_only=args.signal_only,
        actions=actions, production=settings.environment == "production")
    _say(f"endpoint {endpoint_id} for {args.team}. Signing secret (shown once, store it "
         "safely):")
    _say(secret)
    return 0


async def _list(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings) -> int:
    table = Table(title="webhook endpoints")
    for column in ("endpoint", "team", "url", "body", "actions", "state", "secrets", "pending",
                   "dead"):
        table.add_column(column)
    for r in await conn.fetch(q.ENDPOINTS, args.team):
        state = "enabled" if r["enabled"] else \
            f"disabled {r['disabled_at']:%Y-%m-%d %H:%M} UTC: {r['disabled_reason']}"
        table.add_row(r["endpoint_id"], r["team_id"], endpoints.shown_url(r["url"]),
                      "signal-only" if r["signal_only"] else "full", " ".join(r["actions"]),
                      state, str(r["live_secrets"]), str(r["pending"]), str(r["dead"]))
    Console().print(table)
    return 0


async def _rotate(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings) -> int:
    secret = await endpoints.rotate_secret(conn, settings.key_encryption_key(), args.endpoint,
                                           timedelta(hours=args.overlap_hours), args.by)
    _say(f"new secret for {args.endpoint}; the old ones stop signing in "
         f"{args.overlap_hours:g} h. New secret (shown once, store it safely):")
    _say(secret)
    return 0


async def _enable(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings) -> int:
    changed = await endpoints.enable_endpoint(conn, args.endpoint, args.by)
    _say(f"{args.endpoint} enabled" if changed else f"{args.endpoint} was already enabled")
    return 0


async def _disable(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings
                   ) -> int:
    changed = await endpoints.disable_endpoint(conn, args.endpoint, datetime.now(UTC), args.by,
                                               args.reason)
    _say(f"{args.endpoint} disabled; its pending deliveries are cancelled" if changed
         else f"{args.endpoint} was already disabled")
    return 0


async def _deliveries(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings
                      ) -> int:
    await endpoints.endpoint(conn, args.endpoint)
    table = Table(title=f"deliveries of {args.endpoint}")
    for column in ("delivery (webhook-id)", "alert", "action", "v", "status", "attempts",
                   "last answer", "next attempt / finished (UTC)", "reason"):
        table.add_column(column)
    for r in await conn.fetch(q.DELIVERIES, args.endpoint, args.status, args.limit):
        when = r["next_attempt_at"] if r["status"] == "pending" else r["finished_at"]
        table.add_row(r["delivery_id"], r["alert_id"], r["action"], str(r["version"]),
                      r["status"], str(r["attempts"]), r["last_answer"] or "",
                      f"{when:%Y-%m-%d %H:%M:%S}" if when else "", r["reason"] or "")
    Console().print(table)
    return 0


async def _redrive(conn: asyncpg.Connection, args: argparse.Namespace, settings: Settings
                   ) -> int:
    await endpoints.redrive(conn, args.delivery, datetime.now(UTC), args.by)
    _say(f"{args.delivery} is pending again, due now")
    return 0


_VERBS: dict[str, Callable[[asyncpg.Connection, argparse.Namespace, Settings],
                           Awaitable[int]]] = {
    "add": _add, "list": _list, "rotate": _rotate, "enable": _enable, "disable": _disable,
    "deliveries": _deliveries, "redrive": _redrive,
}
