"""`joinedup schema-registry list|register` and `joinedup asyncapi`: found by
services/operations/cli.py.

``list`` prints the subjects, versions and schema ids the gateway serves; ``register`` puts
every schema into an external Confluent-compatible registry (what a process with
``JOINEDUP_SCHEMA_REGISTRY_URL`` does at its first Confluent message) and prints the ids it
gave; ``asyncapi`` prints the AsyncAPI document, or writes it (``docs/asyncapi.yaml``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from services.common import asyncapi
from services.common import schema_registry as table
from services.common.serde.avro import confluent_schema_id
from services.common.settings import Settings
from services.operations.parser import fail

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    _schema_registry(sub, settings)
    _asyncapi(sub, settings)


def _schema_registry(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("schema-registry", help="the Avro schemas' subjects and Confluent "
                       "schema ids (served read-only by the gateway under /schema-registry)")
    commands = p.add_subparsers(dest="registry_command", required=True)
    listing = commands.add_parser("list", help="print every subject, version and schema id")
    listing.add_argument("--agency", action="append", default=[],
                         help="include this agency's topic subject (repeatable)")
    listing.add_argument("--json", action="store_true", help="print JSON (for scripts)")

    def handle_list(args: argparse.Namespace) -> int:
        rows = [{"subject": s.name, "version": v.version,
                 "id": confluent_schema_id(v.fingerprint), "schema": f"{v.family}.v{v.version}"}
                for s in table.subjects(settings().topics, args.agency) for v in s.versions]
        if args.json:
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        else:
            for row in rows:
                sys.stdout.write(f"{row['subject']}\tversion {row['version']}\tid {row['id']}"
                                 f"\t{row['schema']}\n")
        return 0

    listing.set_defaults(handler=handle_list)

    register = commands.add_parser(
        "register", help="register every schema in an external Confluent-compatible registry "
        "and print the ids it gave")
    register.add_argument("--url", help="the registry's URL (default: "
                          "JOINEDUP_SCHEMA_REGISTRY_URL)")
    register.add_argument("--agency", action="append", default=[],
                          help="also register this agency's topic subject (repeatable)")

    def handle_register(args: argparse.Namespace) -> int:
        configured = settings()
        url = args.url or configured.schema_registry_url
        if not url:
            sys.stderr.write("joinedup schema-registry register: no registry: pass --url or "
                             "set JOINEDUP_SCHEMA_REGISTRY_URL\n")
            return 2
        try:
            ids = table.register(url, configured.topics, args.agency)
        except table.RegistryError as exc:
            return fail("schema-registry register", exc)
        names = {v.fingerprint: f"{v.family}.v{v.version}"
                 for s in table.subjects(configured.topics) for v in s.versions}
        for fingerprint, given in ids.items():
            sys.stdout.write(f"{names[fingerprint]}\tid {given}\n")
        return 0

    register.set_defaults(handler=handle_register)


def _asyncapi(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    p = sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document of the Kafka topics "
                       "(docs/asyncapi.yaml is it for the default topic prefix)")
    p.add_argument("--output", type=Path, help="write it to this file instead of printing it")
    p.add_argument("--prefix", help="the topic prefix to describe (default: "
                   "JOINEDUP_TOPIC_PREFIX)")

    def handle(args: argparse.Namespace) -> int:
        topics = settings().topics
        text = asyncapi.render(type(topics)(args.prefix) if args.prefix else topics)
        if args.output is None:
            sys.stdout.write(text)
            return 0
        try:
            args.output.write_text(text)
        except OSError as exc:
            return fail("asyncapi", exc)
        return 0

    p.set_defaults(handler=handle)
