"""`joinedup hmpps unmapped` (the HMPPS event types received with no mapping, still parked)
and `joinedup hmpps check-mapping [FILE]` (a mapping file checked as the gateway checks it at
start)."""

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
from services.common.settings import Settings
from services.ingest.formats.hmpps.mapping import MappingError, load_mapping
from services.ingest.formats.hmpps.unmapped import unmapped_types


def register_commands(sub: argparse._SubParsersAction,
                      settings: Callable[[], Settings]) -> None:
    hmpps = sub.add_parser("hmpps", help="HMPPS domain events: unmapped types, the mapping")
    verbs = hmpps.add_subparsers(dest="verb", required=True)
    unmapped = verbs.add_parser("unmapped", help="HMPPS event types received with no mapping "
                                                 "(parked on the dead-letter topic), by count")
    unmapped.add_argument("--json", action="store_true", help="print JSON lines instead of "
                                                              "a table")
    check = verbs.add_parser("check-mapping", help="check a mapping file as the gateway does "
                                                   "at start")
    check.add_argument("file", nargs="?", type=Path,
                       help="the mapping file (default: JOINEDUP_HMPPS_MAPPING or the "
                            "packaged mapping.toml)")

    def handle(args: argparse.Namespace) -> int:
        current = settings()
        if args.verb == "check-mapping":
            return _check(args.file or current.hmpps_mapping)
        return run_on_database("hmpps unmapped", lambda pool: _unmapped(pool, args.json),
                               current, ())

    hmpps.set_defaults(handler=handle)


def _check(path: Path | None) -> int:
    try:
        mapping = load_mapping(path)
    except MappingError as exc:
        sys.stderr.write(f"joinedup hmpps check-mapping: {exc}\n")
        return 2
    Console().print(f"mapping {mapping.version}: {len(mapping.events)} HMPPS event types")
    return 0


async def _unmapped(pool: asyncpg.Pool, as_json: bool) -> int:
    found = await unmapped_types(pool)
    if as_json:
        for u in found:
            sys.stdout.write(json.dumps({
                "agency": u.agency, "event_type": u.event_type, "count": u.count,
                "first_parked": u.first_parked.isoformat(),
                "last_parked": u.last_parked.isoformat(),
                "newest_dead_letters": list(u.newest_ids)}) + "\n")
        return 0
    table = Table(title="HMPPS event types with no mapping (parked, not yet re-driven)")
    for column in ("agency", "event type", "count", "first", "last", "newest dead letters"):
        table.add_column(column)
    for u in found:
        table.add_row(u.agency, u.event_type, str(u.count), f"{u.first_parked:%Y-%m-%d %H:%M}",
                      f"{u.last_parked:%Y-%m-%d %H:%M}", " ".join(map(str, u.newest_ids)))
    Console().print(table)
    return 0
