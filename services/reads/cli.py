"""`joinedup team|practitioner|agreement|timeline|audit|subject-access`: found by
services/operations/cli.py.

Reading a person at the command line goes through the same filtered, audited path as the
read API: the operator names the reader (`--as` a practitioner, or `--agency` for an
agency's own view) and the purpose.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from projections.queries import ingest as ingest_sql
from projections.queries import reads as q
from services.common.commands import Work, run_on_database
from services.common.events import SENSITIVITIES
from services.common.settings import Settings
from services.identity.operator import OperatorError, parse_identifier, parse_person_id
from services.reads import accounts, erasure, subject_access
from services.reads.accounts import AccountError
from services.reads.adapters import governance_log
from services.reads.domain.audit import PURPOSES, Caller
from services.reads.domain.governance import AgreementEnded, AgreementMade
from services.reads.domain.visibility import ROLES
from services.reads.lookup import ReadRefused
from services.reads.service import PersonReads, person_reads

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    _erase(sub, settings)
    _team(sub, settings)
    _practitioner(sub, settings)
    _agreement(sub, settings)
    _timeline(sub, settings)
    _audit(sub, settings)
    _subject_access(sub, settings)


def _run(name: str, work: Work, settings: Settings) -> int:
    """Run against the database; a refusal is one clear line and exit 2 (1: not found)."""
    try:
        return run_on_database(name, work, settings, (AccountError, OperatorError, ValueError))
    except ReadRefused as exc:
        sys.stderr.write(f"joinedup {name}: {exc.message}\n")
        return 1 if exc.kind == "not_found" else 2


# --- teams and practitioners -----------------------------------------------------------------

def _team(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    team = sub.add_parser("team", help="teams within agencies")
    verbs = team.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="create a team (or rename it)")
    create.add_argument("--agency", required=True, help="the agency id")
    create.add_argument("--team", required=True, help="the team's id within the agency")
    create.add_argument("--name", required=True, help='what people call it, e.g. "Leeds '
                        'housing options"')
    listing = verbs.add_parser("list", help="teams and how many members each has")
    listing.add_argument("--agency", help="only this agency's")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            async with pool.acquire() as conn:
                if args.verb == "create":
                    made = await accounts.create_team(conn, args.agency, args.team, args.name)
                    Console().print(f"team {made}")
                    return 0
                table = Table(title="teams")
                for column in ("team id", "agency", "name", "members"):
                    table.add_column(column)
                for r in await conn.fetch(q.TEAMS, args.agency):
                    table.add_row(r["team_id"], r["agency_id"], r["name"], str(r["members"]))
                Console().print(table)
                return 0
        return _run(f"team {args.verb}", work, current)

    team.set_defaults(handler=handle)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _practitioner(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    practitioner = sub.add_parser("practitioner", help="practitioners' accounts")
    verbs = practitioner.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="create an account (the password is asked for)")
    create.add_argument("username", help="their sign-in name (lower case)")
    create.add_argument("--agency", required=True, help="the agency they work for")
    create.add_argument("--team", help="their team's id (agency/team)")
    create.add_argument("--role", choices=ROLES, default="practitioner",
                        help="what they may see (default: %(default)s)")
    password = verbs.add_parser("password", help="set a new password (unlocks the account)")
    password.add_argument("username", help="whose password")
    for p in (create, password):
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input")
    disable = verbs.add_parser("disable", help="stop the account at once (tokens too)")
    disable.add_argument("username", help="whose account stops working (their tokens too)")
    listing = verbs.add_parser("list", help="accounts")
    listing.add_argument("--agency", help="only this agency's")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            console = Console()
            async with pool.acquire() as conn:
                if args.verb == "create":
                    made = await accounts.create_practitioner(
                        conn, args.username, args.agency, args.team, args.role,
                        _read_password(args))
                    console.print(f"practitioner {made.username} ({made.practitioner_id})")
                elif args.verb == "password":
                    await accounts.set_password(conn, args.username, _read_password(args))
                    console.print(f"password set for {args.username}")
                elif args.verb == "disable":
                    await accounts.disable_practitioner(conn, args.username)
                    console.print(f"{args.username} disabled; their tokens no longer work")
                else:
                    table = Table(title="practitioners")
                    for column in ("username", "agency", "team", "role", "disabled"):
                        table.add_column(column)
                    for r in await conn.fetch(q.PRACTITIONERS, args.agency):
                        table.add_row(r["username"], r["agency_id"], r["team_id"] or "",
                                      r["role"], f"{r['disabled_at']:%Y-%m-%d}"
                                      if r["disabled_at"] else "")
                    console.print(table)
            return 0
        return _run(f"practitioner {args.verb}", work, current)

    practitioner.set_defaults(handler=handle)


# --- sharing agreements ----------------------------------------------------------------------

def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (use ISO 8601, e.g. 2027-03-31)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _agreement(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    agreement = sub.add_parser("agreement", help="information-sharing agreements between "
                               "agencies (never for restricted categories)")
    verbs = agreement.add_subparsers(dest="verb", required=True)
    make = verbs.add_parser("make", help="record an agreement")
    make.add_argument("--agencies", required=True, help="comma-separated agency ids")
    make.add_argument("--categories", required=True,
                      help=f"comma-separated, of {', '.join(SENSITIVITIES)}")
    make.add_argument("--starts", help="ISO date or time (default: now)")
    make.add_argument("--expires", help="ISO date or time (default: no end)")
    make.add_argument("--reference", help="the signed agreement's own reference")
    end = verbs.add_parser("end", help="end an agreement now")
    end.add_argument("agreement_id", help="the agreement that ends (joinedup agreement list)")
    for p in (make, end):
        p.add_argument("--by", required=True, help="who is recording it (audited)")
    verbs.add_parser("list", help="agreements and whether they are in force")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            console = Console()
            if args.verb == "list":
                async with pool.acquire() as conn:
                    found = await governance_log.load_agreements(conn)
                now = datetime.now(UTC)
                table = Table(title="sharing agreements")
                for column in ("id", "agencies", "categories", "starts", "expires", "in force"):
                    table.add_column(column)
                for agreement_id, a in found.items():
                    live = a.shares(a.agencies, next(iter(a.categories)), now)
                    table.add_row(agreement_id, ", ".join(sorted(a.agencies)),
                                  ", ".join(sorted(a.categories)), str(a.starts or ""),
                                  str(a.expires or ""), "yes" if live else "no")
                console.print(table)
                return 0
            caller, reads = Caller.for_operator(args.by), person_reads(pool, current)
            if args.verb == "make":
                payload: AgreementMade | AgreementEnded = AgreementMade(
                    str(uuid.uuid4()), frozenset(_csv(args.agencies)),
                    frozenset(_csv(args.categories)),
                    _moment(args.starts) or datetime.now(UTC), _moment(args.expires),
                    args.reference)
            else:
                payload = AgreementEnded(args.agreement_id)
            event = await reads.record(caller, None, payload, purpose="audit")
            console.print(f"{event.event_type}: {payload.agreement_id}")
            return 0
        return _run(f"agreement {args.verb}", work, current)

    agreement.set_defaults(handler=handle)


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


# --- reading a person ------------------------------------------------------------------------

def _reader_arguments(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--as", dest="as_user", metavar="USERNAME",
                     help="read as this practitioner (what they may see)")
    who.add_argument("--agency", help="read as this agency's own system")
    p.add_argument("--purpose", choices=PURPOSES, default="direct_care",
                   help="why (recorded in the access audit; default: %(default)s)")


async def _caller(conn: asyncpg.Connection, args: argparse.Namespace) -> Caller:
    if args.as_user:
        found = await accounts.find_practitioner(conn, args.as_user)
        if found is None:
            raise AccountError(f"no enabled practitioner {args.as_user!r}")
        return Caller(found.reader, "practitioner", "cli")
    if not await conn.fetchval(ingest_sql.AGENCY_EXISTS, args.agency):
        raise AccountError(f"no agency {args.agency!r}")
    return Caller(accounts.agency_reader(args.agency), "agency_system", "cli")


def _person_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--identifier", help="scheme:value, e.g. nhs_number:9434765919 (a "
                       "local id names its agency: local_id:<agency>/<value>)")
    which.add_argument("--person", help="a person id")


async def _operator_on_person(pool: asyncpg.Pool, settings: Settings,
                              args: argparse.Namespace, purpose: str
                              ) -> tuple[Caller, PersonReads, str]:
    """The operator, the read path, and the person they named (a search by identifier is
    itself audited)."""
    caller = Caller.for_operator(args.by)
    reads = person_reads(pool, settings)
    return caller, reads, await _person_id(reads, caller, args, purpose)


async def _person_id(reads: PersonReads, caller: Caller, args: argparse.Namespace,
                     purpose: str) -> str:
    if getattr(args, "person", None):
        return parse_person_id(args.person)
    identifier = parse_identifier(args.identifier)
    return await reads.search(caller, identifier.scheme, identifier.value, purpose)


def _timeline(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    from services.operations import views

    tl = sub.add_parser("timeline", help="a person's cross-agency timeline, as a reader may "
                        "see it (audited)")
    which = tl.add_mutually_exclusive_group(required=True)
    which.add_argument("--identifier", help="scheme:value, e.g. nhs_number:9434765919 (a "
                       "local id names its agency: local_id:<agency>/<value>)")
    which.add_argument("--person", help="a person id")
    which.add_argument("--busiest", type=int, help="the N people with most agencies")
    _reader_arguments(tl)

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            console = Console()
            reads = person_reads(pool, current)
            async with pool.acquire() as conn:
                caller = await _caller(conn, args)
                people = (await views.busiest_people(conn, args.busiest)
                          if args.busiest else [])
            if args.busiest:
                for n, person in enumerate(people, 1):
                    await views.show_person(reads, caller, person, args.purpose, console,
                                            f"person #{n}")
                return 0
            person = await _person_id(reads, caller, args, args.purpose)
            await views.show_person(reads, caller, person, args.purpose, console,
                                    args.identifier or person)
            return 0
        return _run("timeline", work, current)

    tl.set_defaults(handler=handle)


def _audit(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    audit = sub.add_parser("audit", help="who looked at a person's records (itself audited)")
    _person_arguments(audit)
    audit.add_argument("--by", required=True, help="who is asking (recorded)")
    audit.add_argument("--json", action="store_true", help="print JSON lines")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            caller, reads, person = await _operator_on_person(pool, current, args,
                                                              "audit")
            found = await reads.access_log(caller, person, "audit")
            if args.json:
                for entry in found:
                    sys.stdout.write(json.dumps(entry, default=str) + "\n")
                return 0
            table = Table(title=f"who read or acted on person {person}")
            for column in ("when", "agency", "who", "role", "action", "purpose", "outcome"):
                table.add_column(column)
            for e in found:
                table.add_row(f"{e['at']:%Y-%m-%d %H:%M:%S}", e["agency_id"] or "",
                              e["username"] or e["operator"] or e["reader_kind"],
                              e["role"] or "", e["action"], e["purpose"], e["outcome"])
            Console().print(table)
            return 0
        return _run("audit", work, current)

    audit.set_defaults(handler=handle)


def _subject_access(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    sar = sub.add_parser("subject-access", help="the report a person may ask for: everything "
                         "held about them, where from, shared with whom, read by whom")
    _person_arguments(sar)
    sar.add_argument("--by", required=True, help="who is producing it (recorded)")
    sar.add_argument("--json", dest="json_out", type=Path, help="write the JSON here")
    sar.add_argument("--html", dest="html_out", type=Path,
                     help="write the readable document here")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            caller, reads, person = await _operator_on_person(pool, current, args,
                                                              "subject_access")
            async with pool.acquire() as conn:
                report = await subject_access.report(conn, caller, person, reads.key_ring)
            text = json.dumps(report, indent=2)
            if args.json_out:
                args.json_out.write_text(text)
            if args.html_out:
                args.html_out.write_text(subject_access.render_html(report))
            if not args.json_out and not args.html_out:
                sys.stdout.write(text + "\n")
            else:
                Console().print(f"subject-access report for {person}: "
                                f"{len(report['records'])} records, "
                                f"{len(report['access_log'])} reads and actions")
            return 0
        return _run("subject-access", work, current)

    sar.set_defaults(handler=handle)


def _erase(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    erase = sub.add_parser("erase", help="erase a person: destroy their data keys, so every "
                           "sealed copy of their personal fields (archive, topics, identity "
                           "log) is unreadable; their entries show as erased (audited)")
    _person_arguments(erase)
    erase.add_argument("--by", required=True, help="who is erasing (recorded)")
    erase.add_argument("--reason", required=True,
                       help="why, e.g. the request's reference (recorded)")

    def handle(args: argparse.Namespace) -> int:
        current = settings()

        async def work(pool: asyncpg.Pool) -> int:
            caller, reads, person = await _operator_on_person(pool, current, args,
                                                              "subject_access")
            done = await erasure.erase(pool, reads.key_ring, caller, person, args.reason)
            Console().print(
                f"erased person {done.person_id} ({len(done.person_ids)} person id(s)): "
                f"{done.keys_destroyed} data key(s) destroyed, "
                f"{done.identifiers_forgotten} identifier(s) forgotten, "
                f"{done.timeline_entries} timeline entries now read 'Erased'")
            return 0
        return _run("erase", work, current)

    erase.set_defaults(handler=handle)
