"""`joinedup agency ...` and `joinedup publish`: found by services/operations/cli.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.settings import Settings
from services.ingest.client import JoinedupClient
from services.ingest.credentials import (
    create_agency,
    list_agencies,
    revoke_credential,
    rotate_credential,
)
from services.ingest.domain.parsing import parse_event

SettingsFactory = Callable[[], Settings]


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    agency = sub.add_parser("agency", help="agency credentials for the ingest gateway")
    verbs = agency.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="register an agency and print a new token")
    create.add_argument("agency_id", help="the agency's id (lower case, e.g. hmp-leeds): its "
                        "topic and the source.agency of its events")
    create.add_argument("--name", required=True, help="what people call it")
    create.add_argument("--service-kind", required=True,
                        help="the kind of service it is (PRISON, HOUSING, MENTAL_HEALTH...)")
    verbs.add_parser("list", help="agencies, working credentials, last use")
    revoke = verbs.add_parser("revoke", help="revoke credentials at once")
    revoke.add_argument("agency_id", help="the agency whose credentials stop working")
    revoke.add_argument("--credential", type=uuid.UUID, help="only this credential id")
    rotate = verbs.add_parser("rotate", help="issue a new token; old ones expire after grace")
    rotate.add_argument("agency_id", help="the agency that gets a new token")
    rotate.add_argument("--grace-hours", type=float, default=24.0,
                        help="how long the old token keeps working")
    agency.set_defaults(handler=lambda args: _agency(args, settings()))

    publish = sub.add_parser("publish", help="publish JSON-lines events through the gateway")
    publish.add_argument("file", help="one event per line (gateway JSON, or `simulate --out`)")
    publish.add_argument("--url", help="gateway base URL (default: api_host:api_port)")
    # The token is read from the environment by default: a command-line argument shows in
    # process listings and shell history.
    publish.add_argument("--token", default=os.environ.get("JOINEDUP_AGENCY_TOKEN"),
                         help="agency token (default: $JOINEDUP_AGENCY_TOKEN)")
    publish.add_argument("--batch", type=int, default=100,
                         help="events per request to the gateway")
    publish.set_defaults(handler=lambda args: _publish(args, settings()))


def _agency(args: argparse.Namespace, settings: Settings) -> int:
    if args.verb == "create":
        token = asyncio.run(create_agency(settings, args.agency_id, args.name, args.service_kind))
        _say(f"agency {args.agency_id} registered. Token (shown once, store it safely):")
        _say(token)
    elif args.verb == "list":
        for a in asyncio.run(list_agencies(settings)):
            state = "disabled" if a.disabled_at else f"{a.active_credentials} working token(s)"
            _say(f"{a.agency_id:30} {a.service_kind:15} {state:22} last used "
                  f"{a.last_used_at.isoformat() if a.last_used_at else 'never'}  {a.name}")
    elif args.verb == "revoke":
        count = asyncio.run(revoke_credential(settings, args.agency_id, args.credential))
        _say(f"revoked {count} credential(s) of {args.agency_id}")
    elif args.verb == "rotate":
        token = asyncio.run(rotate_credential(
            settings, args.agency_id, timedelta(hours=args.grace_hours)))
        _say(f"new token for {args.agency_id}; the old ones stop working in "
              f"{args.grace_hours:g} h:")
        _say(token)
    return 0


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    url = args.url or f"http://{settings.api_host}:{settings.api_port}"
    events = []
    for number, body in enumerate(_lines(args.file), 1):
        event, problems = parse_event(body, datetime.now(UTC), timedelta(days=36500))
        if event is None:
            sys.stderr.write(f"line {number}: " + "; ".join(map(str, problems)) + "\n")
            return 2
        events.append(event)

    async def run() -> int:
        refused = 0
        if not args.token:
            raise SystemExit("joinedup publish: set JOINEDUP_AGENCY_TOKEN or pass --token")
        async with JoinedupClient(url, args.token) as client:
            for start in range(0, len(events), args.batch):
                for result in await client.publish_batch(events[start:start + args.batch]):
                    refused += not result.written
        _say(f"published {len(events) - refused} of {len(events)} events; {refused} refused")
        return 1 if refused else 0

    return asyncio.run(run())


def _say(text: str) -> None:
    """Command output for the operator (stdout), not a log line."""
    sys.stdout.write(text + "\n")


def _lines(path: str) -> Iterator[dict[str, Any]]:
    with open(path) as source:
        for line in source:
            if line.strip():
                yield _gateway_form(json.loads(line))


def _gateway_form(body: dict[str, Any]) -> dict[str, Any]:
    """Accept `joinedup simulate --out` records (payload as [record name, fields]) as well."""
    payload = body.get("payload")
    if isinstance(payload, list) and len(payload) == 2:
        name, fields = payload
        body = {**body, "payload": {"family": name.rsplit(".", 1)[-1].lower(),
                                    **{k: v for k, v in fields.items() if v is not None}}}
        body["source"] = {k: v for k, v in body["source"].items() if v is not None}
        body = {k: v for k, v in body.items() if v is not None and k != "schema_version"}
    return body
