"""Read API latency: a 200-entry timeline with consent filtering and the access audit, at a
steady 100 requests/s, next to the same query without filtering or audit, in one run.

Starts the embedded stack (or uses the configured servers), has the real processor apply a
200-event history for one person from five agencies (restricted entries among them), records
governance that the filter must weigh (consent, an agreement, an open episode with a grant,
disclosures), then runs two servers one after the other, each its own process on a free
loopback port:
  * reference: the same timeline query (`TIMELINE_PAGE`, 200 rows) returned as JSON by a
    bare FastAPI app on the same uvicorn settings, no reader, no filtering, no audit;
  * the read API: `GET /v1/people/{id}/timeline?limit=200` as a housing practitioner
    (token checked, person resolved, governance folded, every entry decided, audit row
    written, in one transaction).
Each is driven open loop at the rate (latency from each request's scheduled start, so a
stall cannot hide queued requests), twice, interleaved. Run: `make bench-reads`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.common import KeepAliveClient, bench_settings
from services.common.db import create_pool, wait_and_migrate
from services.common.event_log import EventLog
from services.common.events import (
    AgencyEvent,
    Contact,
    Identifier,
    Payload,
    Referral,
    Source,
    Transition,
)
from services.common.kafka import ensure_topics, make_producer
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.processor.bootstrap import build_processor
from services.reads import accounts
from services.reads.domain.audit import Caller
from services.reads.domain.governance import (
    AgreementMade,
    ConsentGiven,
    EntryDisclosed,
    EpisodeOpened,
)
from services.reads.service import person_reads
from services.stack.ports import free_port

NHS = "9990000026"
ENTRIES = 200
PASSWORD = "benchmark password 1"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SOURCES = {kind: Source(agency, kind, "bench", None, "E08000035") for kind, agency in (
    ("PRISON", "hmp-leeds"), ("SUBSTANCE_USE", "forward-leeds"), ("HOUSING", "leeds-housing"),
    ("MENTAL_HEALTH", "mh-trust-leeds"), ("PROBATION", "probation-yh"))}


def event(event_type: str, payload: Payload, source: str, at: datetime, sensitivity: str
          ) -> AgencyEvent:
    return AgencyEvent(str(uuid.uuid4()), event_type, at, at, SOURCES[source],
                       (Identifier("nhs_number", NHS),), payload, sensitivity)


def history() -> list[AgencyEvent]:
    """200 events of one person from five agencies, a third of them restricted."""
    kinds = [("PRISON", "CRIMINAL_JUSTICE"), ("SUBSTANCE_USE", "SUBSTANCE_USE"),
             ("HOUSING", "GENERAL"), ("MENTAL_HEALTH", "MENTAL_HEALTH"),
             ("PROBATION", "CRIMINAL_JUSTICE")]
    events = []
    for i in range(ENTRIES):
        source, sensitivity = kinds[i % len(kinds)]
        at = T0 + timedelta(hours=6 * i)
        if source == "SUBSTANCE_USE":
            payload: Payload = Referral(f"r-{i}", "forward-leeds", "SUBSTANCE_USE")
            events.append(event("referral.acknowledged", payload, source, at, sensitivity))
        elif source == "PRISON":
            payload = Transition(f"t-{i}", "PRISON_RELEASE")
            events.append(event("transition.scheduled", payload, source, at, sensitivity))
        else:
            events.append(event("contact.attended", Contact(f"c-{i}"), source, at,
                                sensitivity))
    return events


async def prepare(settings: Settings) -> tuple[str, str]:
    """The person applied by the real processor, the governance recorded; returns the person
    id and a housing practitioner's token."""
    await wait_and_migrate(settings)
    await ensure_topics(settings)
    for s in SOURCES.values():
        await create_agency(settings, s.agency, s.agency, s.service_kind)
    events = history()
    producer = make_producer(settings)
    await producer.start()
    try:
        log = EventLog(producer, settings.topics, settings.subject_keys())
        await asyncio.gather(*[await log.send(e) for e in events])
    finally:
        await producer.stop()
    processor = await build_processor(settings, migrate=False)
    task = asyncio.create_task(processor.run())
    try:
        applied = 0
        while applied < ENTRIES:  # the processor is asynchronous: poll what it applied
            await asyncio.sleep(0.2)
            applied = await processor.pool.fetchval("SELECT count(*) FROM timeline_entry")
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()
    pool = await create_pool(settings, max_size=3)
    try:
        async with pool.acquire() as conn:
            person = await conn.fetchval(
                "SELECT person_id::text FROM person_index_identifier WHERE value = $1", NHS)
            await accounts.create_practitioner(conn, "bench.housing", "leeds-housing",
                                                         None, "practitioner", PASSWORD)
            drugs = await accounts.create_practitioner(conn, "bench.drugs", "forward-leeds",
                                                       None, "practitioner", PASSWORD)
            signed = await accounts.sign_in(conn, "bench.housing", PASSWORD, timedelta(hours=1))
            assert signed is not None
        reads = person_reads(pool, settings)
        as_drugs = Caller(drugs.reader, "practitioner")
        await reads.record(Caller.for_operator("bench"), None,
                           AgreementMade("isa-1", frozenset({"leeds-housing", "hmp-leeds"}),
                                         frozenset({"CRIMINAL_JUSTICE"}), T0))
        await reads.record(as_drugs, person, ConsentGiven(
            "c-1", frozenset({"leeds-housing"}), frozenset({"SUBSTANCE_USE"}), T0, None,
            "explicit"))
        await reads.record(as_drugs, person, EpisodeOpened("ep-1", drugs.practitioner_id,
                                                           "forward-leeds"))
        for e in [e for e in events if e.source.agency == "forward-leeds"][:5]:
            await reads.record(as_drugs, person, EntryDisclosed(
                f"d-{e.event_id}", "forward-leeds", e.event_id, "probation-yh",
                "safeguarding", "benchmark"))
    finally:
        await pool.close()
    return person, signed.token


@contextmanager
def server(settings: Settings, command: list[str]) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
           "JOINEDUP_DB_SCHEMA": settings.db_schema, "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
           "JOINEDUP_READS_PORT": str(port), "JOINEDUP_LOG_LEVEL": "WARNING",
           "BENCH_PORT": str(port)}
    child = subprocess.Popen([sys.executable, "-m", *command], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not start")
            time.sleep(0.2)
        yield url
    finally:
        child.terminate()
        child.wait(20)


async def steady(getter: KeepAliveClient, rate: float, seconds: float
                 ) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    failures = 0
    total = int(rate * seconds)

    async def one(scheduled: float) -> None:
        nonlocal failures
        status, _ = await getter.send()
        latencies.append(time.perf_counter() - scheduled)
        failures += status != 200

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return latencies, failures, total / (time.perf_counter() - start)


def cut(latencies: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000


async def main(rate: float, seconds: float, rounds: int) -> None:
    configure_logging("WARNING", json=False)
    console = Console()
    with bench_settings() as settings:
        person, token = await prepare(settings)
        console.print(f"prepared: one person, {ENTRIES} timeline entries")
        results: dict[str, list[tuple[float, float, float, int]]] = {"reference": [],
                                                                     "read API": []}
        paths = {"reference": (["benchmarks.reads_reference"], f"/timeline/{person}"),
                 "read API": (["services.operations.cli", "read-api"],
                              f"/v1/people/{person}/timeline?purpose=direct_care&limit=200")}
        for _ in range(rounds):
            for name, (command, path) in paths.items():
                with server(settings, command) as url:
                    getter = KeepAliveClient(url, "GET", path,
                                             {"Authorization": f"Bearer {token}"})
                    status, size = await getter.send()
                    assert status == 200, (name, status)
                    for _ in range(50):  # warm-up
                        await getter.send()
                    latencies, failures, achieved = await steady(getter, rate, seconds)
                    getter.close()
                    p50, p99 = cut(latencies)
                    results[name].append((p50, p99, achieved, failures))
                    console.print(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms at "
                                  f"{achieved:.0f} req/s ({failures} failed; {size:,} bytes)")
    table = Table(title=f"GET a {ENTRIES}-entry timeline at {rate:.0f} req/s for {seconds:.0f} s, "
                        f"{rounds} rounds interleaved (median of rounds)")
    for column in ("server", "p50 ms", "p99 ms", "req/s achieved", "failed"):
        table.add_column(column, justify="right")
    for name, runs in results.items():
        table.add_row(name, f"{statistics.median(r[0] for r in runs):.1f}",
                      f"{statistics.median(r[1] for r in runs):.1f}",
                      f"{statistics.median(r[2] for r in runs):.0f}", str(sum(r[3] for r in runs)))
    console.print(table)
    ref, api = results["reference"], results["read API"]
    console.print(
        f"ratio read API / reference: p50 "
        f"{statistics.median(r[0] for r in api) / statistics.median(r[0] for r in ref):.2f}, "
        f"p99 {statistics.median(r[1] for r in api) / statistics.median(r[1] for r in ref):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds, args.rounds))
