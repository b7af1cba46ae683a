"""`joinedup what-if` and `joinedup replay`: found by services/operations/cli.py.

Both fold recorded history in memory (``services/operations/dry_run.py``) and write nothing:
no table row, no outbox row, no topic record. Neither shows a person id or an identifier:
the what-if counts alerts and people per rule, the replay counts changes and alert events.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from services.common.commands import run_on_database
from services.common.runtime import tune_for_streaming
from services.common.settings import Settings
from services.identity.key_ring import KeyRing
from services.operations.dry_run import History, archived, logged, what_if_report
from services.operations.parser import moment, positive
from services.operations.replay import Replay, replay
from services.processor.bootstrap import load_pack
from services.processor.domain.rules import RuleFileError, load_rule_pack
from services.processor.opening import Opener
from services.processor.read_models import read_models
from services.processor.rules_stage import RuleStage

SettingsFactory = Callable[[], Settings]
SOURCES = ("archive", "log")


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    _what_if(sub, settings)
    _replay(sub, settings)




def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=SOURCES, default="archive",
                   help="read the event archive (dependable, spans replaced logs) or the "
                        "Kafka log up to the processor's position")
    p.add_argument("--at", type=moment,
                   help="the moment deadlines are judged at, ISO 8601 (default: the stream "
                        "clock's end, the latest recorded-at in the history)")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.add_argument("--batch-size", type=positive, default=5000,
                   help="events read from the history at a time")


def history_of(settings: Settings, source: str, opener: Opener | None,
               batch_size: int) -> History:
    """From the log, events are opened whatever the reader (the person index is asked which
    person each is, by its identifiers)."""
    if source == "log":
        return logged(settings.topics.person_events, settings.processor_group, settings,
                      opener or Opener(KeyRing(settings.key_encryption_key())), batch_size)
    return archived(settings.topics.person_events, opener, batch_size)


def _what_if(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("what-if", help="fold a changed rule file over history beside the "
                       "current one and show the difference in alerts per rule (nothing "
                       "live changes)")
    p.add_argument("--rules", required=True, type=Path,
                   help="the changed rule file (TOML, checked as the worker checks it)")
    p.add_argument("--rule", help="show this rule only (its id)")
    p.add_argument("--since", type=moment,
                   help="count only alerts raised at or after this moment, ISO 8601 (the "
                        "history before it is still folded: the state it leaves matters)")
    _common(p)

    def handle(args: argparse.Namespace) -> int:
        try:
            changed = load_rule_pack(args.rules)
        except RuleFileError as exc:
            sys.stderr.write(f"joinedup what-if: the changed rule file is invalid\n{exc}\n")
            return 2
        current = settings()
        tune_for_streaming()

        async def work(pool: asyncpg.Pool) -> int:
            found = await what_if_report(
                pool, history_of(current, args.source, None, args.batch_size),
                load_pack(current), changed, rule=args.rule, since=args.since, at=args.at)
            if args.json:
                sys.stdout.write(json.dumps(found, indent=2) + "\n")
            else:
                _print_what_if(found)
            return 0
        return run_on_database("what-if", work, current, (ValueError,))

    p.set_defaults(handler=handle)


def _print_what_if(found: dict) -> None:
    """The rules whose alerts differ (all of them with --json), alerts / people each."""
    console = Console()
    if not console.is_terminal:  # piped: rich would cut every row to 80 columns
        console = Console(width=160)
    console.print(f"what-if over {found['events']:,} events, deadlines judged at "
                  f"{found['now']}: pack {found['current_pack']} -> {found['changed_pack']}")
    differing = [r for r in found["rules"] if _differs(r)]
    if not differing:
        console.print("no difference in alerts")
        return
    table = Table(title="alerts / people per rule")
    table.add_column("rule", no_wrap=True)
    for column in ("now", "changed", "new", "gone", "deadline", "severity", "would be due"):
        table.add_column(column, justify="right", no_wrap=True)

    def n(t: dict) -> str:
        return f"{t['alerts']:,}/{t['people']:,}"

    for r in differing:
        due = r["would_be_due"]
        table.add_row(r["rule"], n(r["current"]), n(r["changed"]), n(r["new"]), n(r["gone"]),
                      n(r["deadline_changed"]), n(r["severity_changed"]),
                      f"{n(due['current'])}->{n(due['changed'])}")
    console.print(table)
    console.print(f"the changed pack raises different alerts for {len(differing)} rule(s); "
                  f"{len(found['rules']) - len(differing)} rule(s) unchanged")


def _differs(r: dict) -> bool:
    return bool(r["new"]["alerts"] or r["gone"]["alerts"] or r["deadline_changed"]["alerts"]
                or r["severity_changed"]["alerts"]
                or r["would_be_due"]["current"] != r["would_be_due"]["changed"])


def _replay(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("replay", help="re-run the read models over everything recorded from "
                       "a moment, in memory, and report what they would produce (nothing "
                       "written)")
    p.add_argument("--since", type=moment, required=True,
                   help="replay the events recorded from this moment, ISO 8601 (earlier "
                        "history is folded first for state)")
    p.add_argument("--read-models", help="comma-separated names (default: every one): "
                   "timeline, identifiers, referrals, caseload, fhir_tasks, rules")
    _common(p)

    def handle(args: argparse.Namespace) -> int:
        current = settings()
        tune_for_streaming()
        stage = RuleStage(load_pack(current))
        everything = read_models(stage)
        names = [n for n in (args.read_models or "").split(",") if n]
        try:
            registry = everything.only(names) if names else everything
        except KeyError as exc:
            sys.stderr.write(f"joinedup replay: {exc.args[0]}\n")
            return 2
        opener = Opener(KeyRing(current.key_encryption_key()))

        async def work(pool: asyncpg.Pool) -> int:
            result = await replay(pool, registry, history_of(current, args.source, opener,
                                                             args.batch_size),
                                  stage.pack, args.since, args.at)
            if args.json:
                sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
            else:
                _print_replay(result, registry.names)
            return 0
        return run_on_database("replay", work, current, (ValueError,))

    p.set_defaults(handler=handle)


def _print_replay(result: Replay, names: tuple[str, ...]) -> None:
    console = Console()
    table = Table(title=f"replay of {result.replayed.events:,} events recorded from "
                        f"{result.since.isoformat()} ({result.before.events:,} earlier ones "
                        f"folded for state): nothing written")
    table.add_column("read model")
    table.add_column("changes from then", justify="right")
    for name in names:
        table.add_row(name, f"{result.replayed.changes[name]:,}")
    console.print(table)
    alerts = Table(title="alert events the rules raise from then")
    for column in ("rule", "action", "events"):
        alerts.add_column(column)
    for (rule, action), count in sorted(result.replayed.alerts_by_rule().items()):
        alerts.add_row(rule, action, f"{count:,}")
    console.print(alerts)
    if result.raised or result.raised_live:
        raised = Table(title="alerts raised from then: replayed vs the live tables")
        for column in ("rule", "replayed", "live"):
            raised.add_column(column)
        for row in result.to_json()["raised_since"]:  # type: ignore[attr-defined]
            raised.add_row(row["rule"], f"{row['replayed']:,}", f"{row['live']:,}")
        console.print(raised)
