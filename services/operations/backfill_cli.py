"""`joinedup backfill ...`: an agency's onboarding backfill (docs/backfill.md).

    joinedup backfill start --agency hmp-leeds --until 2026-03-02T09:00 --by j.smith
    joinedup backfill upload --agency hmp-leeds history.jsonl
    joinedup backfill status [--agency hmp-leeds]
    joinedup backfill finish --agency hmp-leeds --by j.smith
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from services.common.commands import run_on_database
from services.common.db import create_pool
from services.common.event_log import EventLog
from services.common.events import AgencyEvent
from services.common.kafka import BROKER_UNAVAILABLE, TopicGuard, ensure_topics, make_producer
from services.common.settings import Settings
from services.ingest.cli import _gateway_form  # the gateway's own reading of `simulate --out`
from services.ingest.domain.parsing import parse_event
from services.operations.backfill_store import (
    backfill_status,
    cut_over_of,
    finish_backfill,
    open_backfill,
)
from services.operations.parser import moment
from services.processor.domain.backfill import BackfillRefused

SettingsFactory = Callable[[], Settings]
#: events acknowledged together on an upload
UPLOAD_BATCH = 500


def register_commands(sub: argparse._SubParsersAction, settings: SettingsFactory) -> None:
    backfill = sub.add_parser("backfill", help="an agency's onboarding backfill: its history "
                                               "applied without alerting duty teams")
    verbs = backfill.add_subparsers(dest="verb", required=True)
    start = verbs.add_parser("start", help="open a backfill before the agency publishes: its "
                                           "events recorded before --until are history")
    start.add_argument("--until", required=True, type=moment,
                       help="the cut-over (ISO 8601, UTC if no zone): events recorded before "
                            "it are history, from it on live")
    upload = verbs.add_parser("upload", help="publish the agency's history (JSON lines, the "
                                             "gateway's form) in recorded-at order")
    upload.add_argument("file", help="one event per line (gateway JSON, or `simulate --out`)")
    status = verbs.add_parser("status", help="each backfill: cut-over, history applied, "
                                             "deadlines held, historical alerts")
    finish = verbs.add_parser("finish", help="the history is all uploaded: judge the deadlines "
                                             "it holds")
    for p in (start, upload, finish):
        p.add_argument("--agency", required=True, help="the agency's id (e.g. hmp-leeds)")
    status.add_argument("--agency", help="only this agency (default: every backfill)")
    for p in (start, finish):
        p.add_argument("--by", required=True, help="who is doing it (recorded)")

    def handle(args: argparse.Namespace) -> int:
        current = settings()
        if args.verb == "upload":
            try:
                return asyncio.run(_upload(current, args.agency, args.file))
            except BackfillRefused as exc:
                sys.stderr.write(f"joinedup backfill upload: {exc}\n")
                return 2
        return run_on_database(f"backfill {args.verb}", lambda pool: _VERBS[args.verb](pool, args),
                               current, (BackfillRefused,))

    backfill.set_defaults(handler=handle)


async def _start(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    _named(args.by)
    async with pool.acquire() as conn:
        await open_backfill(conn, args.agency, args.until, args.by)
    _say(f"backfill of {args.agency} open: its events recorded before "
         f"{args.until.isoformat()} are history")
    return 0


async def _finish(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    _named(args.by)
    async with pool.acquire() as conn:
        await finish_backfill(conn, args.agency, args.by)
    _say(f"backfill of {args.agency} finished: its held deadlines are judged once the worker "
         "has applied what is on the log (joinedup backfill status)")
    return 0


async def _status(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    async with pool.acquire() as conn:
        found = await backfill_status(conn, args.agency)
    if not found:
        _say("no backfill" + (f" of {args.agency}" if args.agency else ""))
        return 1 if args.agency else 0
    for b in found:
        finished = (f"finished {b.finished_at:%Y-%m-%d %H:%M} by {b.finished_by}"
                    if b.finished_at else "not finished")
        _say(f"{b.agency}: {b.state}\n  cut-over {b.cut_over.isoformat()}; opened "
             f"{b.opened_at:%Y-%m-%d %H:%M} by {b.opened_by}; {finished}\n"
             f"  history applied {b.history_applied}, deadlines held {b.held}, "
             f"historical alerts {b.historical_alerts}")
    return 0


_VERBS = {"start": _start, "finish": _finish, "status": _status}


async def _upload(settings: Settings, agency: str, path: str) -> int:
    """The history onto the agency's topic through the one log adapter, as its direct
    publishing would, in recorded-at order; refused unless the backfill is open and every
    line is the agency's history."""
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            found = await cut_over_of(conn, agency)
    finally:
        await pool.close()
    if found is None or found[1]:
        raise BackfillRefused(f"{agency} has no open backfill (joinedup backfill start)")
    events = _history(path, agency, found[0])
    await ensure_topics(settings, agencies=[agency])
    producer = make_producer(settings)
    try:
        await producer.start()
        log = EventLog(producer, settings.topics, settings.subject_keys())
        # The topic asked for before each batch and after the last (max_age 0: never a
        # cached answer): a broker that restarted on memory storage lists no topics, yet
        # acknowledges writes to them and keeps none (TopicGuard says why), so a batch
        # counts only if its topic was listed before it and after it.
        guard, topic = TopicGuard(producer, max_age=0.0), settings.topics.agency(agency)
        for first in range(0, len(events), UPLOAD_BATCH):
            await guard.require([topic])
            await asyncio.gather(*[await log.send(e)
                                   for e in events[first:first + UPLOAD_BATCH]])
        await guard.require([topic])
    except BROKER_UNAVAILABLE as exc:
        raise RuntimeError(
            f"the broker failed part-way through the upload ({type(exc).__name__}): run it "
            "again once the broker is back (events already applied are recognised, not "
            "doubled)") from exc
    finally:
        with contextlib.suppress(*BROKER_UNAVAILABLE):
            await producer.stop()
    _say(f"uploaded {len(events)} events of {agency}'s history")
    return 0


def _history(path: str, agency: str, cut_over: datetime) -> list[AgencyEvent]:
    events = []
    with open(path) as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                body = json.loads(line)
            except ValueError:
                raise BackfillRefused(f"line {number}: not JSON") from None
            event, problems = parse_event(_gateway_form(body), datetime.now(UTC),
                                          timedelta(days=36500))
            if event is None:
                raise BackfillRefused(f"line {number}: " + "; ".join(map(str, problems)))
            if event.source.agency != agency or event.recorded_at >= cut_over:
                raise BackfillRefused(f"line {number}: not {agency}'s history (another "
                                      "agency's event, or recorded at or after the cut-over)")
            events.append(event)
    return sorted(events, key=lambda e: e.recorded_at)


def _named(by: str) -> None:
    if not by.strip():
        raise BackfillRefused("--by must name who is doing it")



def _say(text: str) -> None:
    """Command output for the operator (stdout), not a log line."""
    sys.stdout.write(text + "\n")
