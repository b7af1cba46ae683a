"""`joinedup person show|link|unlink|split`: found by services/operations/cli.py."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from services.common.db import create_pool
from services.common.events import Identifier
from services.common.kafka import make_producer
from services.common.settings import Settings
from services.identity import operator
from services.identity.codec import IdentityEvent
from services.identity.key_ring import KeyRing
from services.identity.operator import (
    OperatorError,
    PersonView,
    parse_identifier,
    parse_person_id,
)
from services.reads.adapters import audit_log
from services.reads.domain.audit import Caller, action_record

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    person = sub.add_parser("person", help="the person index: show a person, link, unlink or "
                            "split records (every change audited: who and why)")
    verbs = person.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("show", help="a person's id, identifiers and identity history")
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--identifier", help="scheme:value, e.g. nhs_number:9434765919 (a "
                       "local id names its agency: local_id:<agency>/<value>)")
    which.add_argument("--person", help="a person id (an old one shows where it went)")
    show.add_argument("--json", action="store_true", help="print JSON rather than tables")
    show.add_argument("--by", default=_login_name(),
                      help="who is looking (recorded in the access audit; default: the "
                           "login name, %(default)s)")
    for verb, text in (("link", "the two identifiers' records are one person"),
                       ("unlink", "undo the merge that made the two one person")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("first", help="scheme:value")
        p.add_argument("second", help="scheme:value")
    split = verbs.add_parser("split", help="take these identifiers (one person's) into a new "
                             "person; the matching rule never merges them back")
    split.add_argument("identifiers", nargs="+", help="scheme:value ...")
    for p in (verbs.choices["link"], verbs.choices["unlink"], split):
        p.add_argument("--by", required=True, help="who is deciding (recorded)")
        p.add_argument("--reason", required=True, help="why (recorded)")
    person.set_defaults(handler=lambda args: _person(args, settings()))


def _person(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.verb == "show":
            return asyncio.run(_show(args, settings, parse_identifier(args.identifier)
                                     if args.identifier else None,
                                     parse_person_id(args.person) if args.person else None))
        if args.verb == "split":
            decision = operator.splitting([parse_identifier(i) for i in args.identifiers])
        else:
            a, b = parse_identifier(args.first), parse_identifier(args.second)
            decision = (operator.linking if args.verb == "link" else operator.unlinking)(a, b)
        events = asyncio.run(_decide(settings, decision, args.by, args.reason))
    except OperatorError as exc:
        sys.stderr.write(f"joinedup person {args.verb}: {exc}\n")
        return 2
    console = Console()
    if not events:
        console.print("nothing to change: the index already holds that")
    for event in events:
        console.print(operator.describe(event.change))
    return 0


async def _decide(settings: Settings, decision: operator.Decision, by: str, reason: str
                  ) -> list[IdentityEvent]:
    pool = await create_pool(settings, max_size=1)
    producer = make_producer(settings)
    await producer.start()
    try:
        return await operator.decide(pool, producer, settings.topics.person_events, decision,
                                     by, reason, KeyRing(settings.key_encryption_key()))
    finally:
        await producer.stop()
        await pool.close()


async def _show(args: argparse.Namespace, settings: Settings, identifier: Identifier | None,
                person_id: str | None) -> int:
    if not args.by:
        raise OperatorError("name who is looking: --by (this process has no login name)")
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            view = await operator.show(conn, identifier=identifier, person_id=person_id)
            caller = Caller.for_operator(args.by)
            await audit_log.write(conn, action_record(
                caller, "read.identity", view.current_id if view else None, "investigation",
                "ok" if view else "not_found",
                {"scheme": identifier.scheme} if identifier else None))
    finally:
        await pool.close()
    if view is None:
        sys.stderr.write("joinedup person show: the person index holds no such person\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(_jsonable(view), default=str, indent=2) + "\n")
    else:
        _print(view, Console())
    return 0


def _jsonable(view: PersonView) -> dict[str, object]:
    return {"person_id": view.person_id, "current_id": view.current_id,
            "identifiers": [{"scheme": i.scheme, "value": i.value} for i in view.identifiers],
            "merged": view.merged, "history": view.history}


def _print(view: PersonView, console: Console) -> None:
    if view.current_id != view.person_id:
        console.print(f"person {view.person_id} was merged: it resolves to {view.current_id}")
    console.print(f"person {view.current_id}")
    ids = Table(title="identifiers")
    for column in ("scheme", "value"):
        ids.add_column(column)
    for i in view.identifiers:
        ids.add_row(i.scheme, i.value)
    console.print(ids)
    if len(view.merged) > 1:
        console.print("person ids resolving here: " + ", ".join(view.merged))
    history = Table(title="identity history")
    for column in ("when", "change", "asserted by", "who", "why"):
        history.add_column(column)
    for h in view.history:
        history.add_row(str(h["decided_at"]), str(h["summary"]), str(h["asserted_by"] or ""),
                        str(h["actor"] or ""), str(h["reason"] or ""))
    console.print(history)


def _login_name() -> str | None:
    """The login name, for ``--by``'s default; None where the process has none (a container's
    numeric user with no passwd entry), when ``--by`` must be given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
