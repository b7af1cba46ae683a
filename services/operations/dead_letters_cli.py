"""`joinedup dead-letters list|show|redrive|purge`: found by services/operations/cli.py.

Every action names the operator (`--by`) and is recorded in the access audit; `--json`
prints what a script reads (one JSON document)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.common.commands import run_on_database
from services.common.dead_letters import STAGES
from services.common.settings import Settings
from services.operations.dead_letters import STATUSES, DeadLetters, Filter, Shown
from services.operations.parser import moment
from services.reads.domain.audit import Caller
from services.reads.lookup import ReadRefused

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    dl = sub.add_parser("dead-letters", help="messages parked on the dead-letter topic: list, "
                        "show, re-drive after a fix, purge (each audited)")
    verbs = dl.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--reason", help="only those whose reason contains this text")
    listing.add_argument("--source", help="only those from this agency (or this topic)")
    listing.add_argument("--stage", choices=sorted(STAGES), help="only those parked here")
    listing.add_argument("--since", type=moment, help="parked at or after (ISO 8601, UTC "
                         "if no zone)")
    listing.add_argument("--until", type=moment, help="parked before (ISO 8601)")
    listing.add_argument("--status", choices=STATUSES, default="open",
                         help="open (neither re-driven nor purged), redriven, purged or all")
    listing.add_argument("--limit", type=_count, default=50, help="at most this many")
    show = verbs.add_parser("show", help="one dead letter: reason, headers, its bytes decoded")
    redrive = verbs.add_parser("redrive", help="send it back to the topic it was parked "
                               "from, once the cause is fixed")
    purge = verbs.add_parser("purge", help="mark it dealt with (the record stays on the "
                             "topic: Kafka cannot delete it)")
    for p in (show, redrive, purge):
        p.add_argument("id", type=int, help="the dead letter's number (from list)")
    for p in (redrive, purge):
        p.add_argument("--reason", required=True, help="why (recorded with it)")
    for p in (listing, show, redrive, purge):
        p.add_argument("--by", required=True, help="who is acting (recorded in the audit)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            letters = DeadLetters(pool, current)
            caller = Caller.for_operator(args.by)
            if args.verb == "list":
                found = await letters.list(caller, Filter(
                    args.reason, args.source, args.stage, args.since, args.until,
                    args.status, args.limit))
                _print_list(found, args.json)
            elif args.verb == "show":
                _print_shown(await letters.show(caller, args.id), args.json)
            else:
                act = letters.redrive if args.verb == "redrive" else letters.purge
                _print_letter(await act(caller, args.id, args.reason), args.json)
            return 0
        try:
            return run_on_database(f"dead-letters {args.verb}", work, current, ())
        except ReadRefused as exc:
            sys.stderr.write(f"joinedup dead-letters {args.verb}: {exc.message}\n")
            return 1 if exc.kind == "not_found" else 2

    dl.set_defaults(handler=handle)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be 1 to 10000")
    return value



def _dump(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=_default, indent=2) + "\n")


def _default(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _print_list(found: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _dump(found)
        return
    table = Table(title=f"{len(found)} dead letter(s), newest first")
    for column in ("id", "parked", "stage", "source", "reason", "status"):
        table.add_column(column)
    for d in found:
        table.add_row(str(d["id"]), f"{d['parked_at']:%Y-%m-%d %H:%M:%S}", d["stage"] or "",
                      Text(d["source_agency"] or d["topic"]), Text(d["reason"]), d["status"])
    Console().print(table)


def _print_letter(letter: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _dump(letter)
        return
    console = Console()
    for name, value in letter.items():
        if value is not None:
            console.print(Text(f"{name}: {value}"))


def _print_shown(shown: Shown, as_json: bool) -> None:
    if as_json:
        _dump(asdict(shown))
        return
    _print_letter(shown.letter, False)
    console = Console()
    if shown.problem is not None:
        console.print(Text(f"copy: not read back: {shown.problem}"))
        return
    console.print(Text(f"key: {shown.key}\ntimestamp: {shown.timestamp}"))
    for title, headers in (("original headers", shown.headers),
                           ("error headers", shown.error_headers)):
        table = Table(title=title)
        table.add_column("header")
        table.add_column("value")
        for name, value in headers:
            table.add_row(Text(name), Text(value))
        console.print(table)
    content = shown.content
    assert content is not None
    console.print(f"content: {content.form}" + (f" ({content.schema})" if content.schema
                                                 else ""), highlight=False)
    if content.note:
        console.print(Text(f"note: {content.note}"))
    if content.decoded is not None:
        console.print_json(json.dumps(content.decoded, default=str))
    else:
        console.print(f"hex: {content.hex}\nbase64: {content.base64}", highlight=False)
