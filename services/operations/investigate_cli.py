"""`joinedup explain|as-of|replay-person`: found by services/operations/cli.py.

Investigations of one person for operations and information-governance staff
(``services/operations/investigate.py``): every agency's entries are shown, the operator
names themselves (``--by``) and the purpose, and each run is one access-audit row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table

from services.common.commands import run_on_database
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.identity.operator import OperatorError, parse_person_id
from services.operations import investigate
from services.operations.investigate import Investigation
from services.operations.parser import moment
from services.processor.bootstrap import load_pack
from services.processor.domain.rules import RuleFileError
from services.processor.domain.rules.explain import render_trace, trace_json
from services.processor.opening import Opener
from services.reads.domain.audit import PURPOSES, Caller
from services.reads.lookup import ReadRefused

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    _explain(sub, settings)
    _as_of(sub, settings)
    _replay_person(sub, settings)



def _common(p: argparse.ArgumentParser, purpose: str | None) -> None:
    p.add_argument("--person", required=True, help="the person id (an old id resolves to "
                   "where it went)")
    p.add_argument("--by", required=True, help="who is asking (recorded in the access audit)")
    p.add_argument("--purpose", choices=PURPOSES, required=purpose is None, default=purpose,
                   help="why (recorded in the access audit)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _run(name: str, args: argparse.Namespace, settings: SettingsFactory,
         work: Callable[[asyncpg.Pool, Investigation, str], Any]) -> int:
    current = settings()
    try:
        person = parse_person_id(args.person)
        how = Investigation(load_pack(current), Opener(KeyRing(current.key_encryption_key())),
                            Caller.for_operator(args.by), args.purpose)
    except (OperatorError, RuleFileError) as exc:
        sys.stderr.write(f"joinedup {name}: {str(exc).splitlines()[0]}\n")
        return 2

    async def go(pool: asyncpg.Pool) -> int:
        return int(await work(pool, how, person))
    try:
        return run_on_database(name, go, current, (ValueError,))
    except ReadRefused as exc:
        sys.stderr.write(f"joinedup {name}: {exc.message}\n")
        return 1 if exc.kind == "not_found" else 2


def _explain(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("explain", help="why each rule's alert did or did not fire for a "
                       "person: the engine's fold of their archived events, traced (audited)")
    _common(p, None)
    p.add_argument("--rule", help="only this rule (its id in the rule pack)")
    p.add_argument("--at", type=moment, help="as known at this time (ISO 8601, UTC if no "
                   "zone): only events recorded and archived by then, deadlines judged then "
                   "(default: every event, deadlines judged now)")

    def handle(args: argparse.Namespace) -> int:
        async def work(pool: asyncpg.Pool, how: Investigation, person: str) -> int:
            at = args.at or datetime.now(UTC)
            found = await investigate.explain(pool, how, person, at, args.rule,
                                              known_only=args.at is not None)
            text = (json.dumps(trace_json(found), indent=2) if args.json
                    else "\n\n".join(render_trace(found)))
            sys.stdout.write(text + "\n")
            return 0
        return _run("explain", args, settings, work)

    p.set_defaults(handler=handle)


def _as_of(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("as-of", help="a person's timeline, open expectations and alerts as "
                       "joinedup knew them at a time (audited)")
    _common(p, "investigation")
    p.add_argument("--at", type=moment, required=True,
                   help="the moment (ISO 8601, UTC if no zone)")

    def handle(args: argparse.Namespace) -> int:
        async def work(pool: asyncpg.Pool, how: Investigation, person: str) -> int:
            view = await investigate.as_of_person(pool, how, person, args.at)
            if args.json:
                sys.stdout.write(json.dumps(view, default=_iso, indent=2) + "\n")
            else:
                _print_as_of(view)
            return 0
        return _run("as-of", args, settings, work)

    p.set_defaults(handler=handle)


def _replay_person(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("replay-person", help="fold every read model over one person's "
                       "archived history in memory and compare with the live tables; "
                       "nothing is written but the audit row; exit 1 if they differ")
    _common(p, "audit")

    def handle(args: argparse.Namespace) -> int:
        async def work(pool: asyncpg.Pool, how: Investigation, person: str) -> int:
            who, events, found = await investigate.replay(pool, how, person,
                                                          datetime.now(UTC))
            if args.json:
                sys.stdout.write(json.dumps({
                    "person_id": who, "events": events,
                    "differences": [dataclasses.asdict(d) for d in found]}) + "\n")
            else:
                table = Table(title=f"person {who}: {events} archived events replayed; "
                              f"{len(found)} difference(s) with the live read models")
                for column in ("read model", "key", "live", "replayed"):
                    table.add_column(column)
                for d in found:
                    table.add_row(d.read_model, d.key, d.live or "-", d.replayed or "-")
                Console().print(table)
            return 1 if found else 0
        return _run("replay-person", args, settings, work)

    p.set_defaults(handler=handle)


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _print_as_of(view: dict[str, Any]) -> None:
    console = Console()
    console.print(f"person {view['person_id']} as known at {_iso(view['at'])}: "
                  f"{view['events']} events")
    tables: list[tuple[str, str, tuple[str, ...]]] = [
        ("timeline", "timeline", ("occurred_at", "event_type", "source_agency", "summary")),
        ("caseload", "who was working with them", ("agency", "service_kind", "active")),
        ("referrals", "referrals", ("referral_id", "to_service_kind", "status", "status_at")),
        ("open_expectations", "open expectations", ("rule_id", "due_at", "expected")),
        ("alerts", "alerts", ("rule_id", "raised_at", "status", "resolution")),
    ]
    for key, title, columns in tables:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in view[key]:
            table.add_row(*(_iso(row[c]) if row[c] is not None else "" for c in columns))
        console.print(table)
