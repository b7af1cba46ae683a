"""Ingest gateway throughput and latency, next to raw aiokafka produce, in one run.

Starts the embedded stack (or uses the configured servers), runs the gateway as its own
process (`joinedup api`, uvicorn on a free loopback port, so the load generator does not share
its interpreter), then measures:
  1. raw aiokafka: produce N encoded events with acks=all, keyed by person (the ceiling);
  2. the batch endpoint: N events in batches of 100, a few requests in flight;
  3. single-event posts at a steady rate (default 200/s for 20 s, open loop: latency is taken
     from each request's scheduled start, so a stall cannot hide queued requests), sent with a
     bare keep-alive HTTP/1.1 client, as httpx costs more CPU per request than the gateway.
Run: `make bench-ingest` (or `python benchmarks/bench_ingest.py --events 20000`).

Measured on the 2-core development machine, shared and noisy (load average 3.5-4.9 from other
work), with the claim-row receipts (two statements per request, no transaction): single posts
held 200 req/s in one run (p50 39 ms, p99 468 ms) and fell short in two (181 and 133 req/s
achieved, queueing); at 120 req/s p50 26 ms, p99 308 ms. Gateway CPU 2.1-3.1 ms per single
post and 0.33-0.39 ms per batched event; batches of 100 gave 1,300-1,800 events/s, 0.20-0.27
of raw aiokafka (4,800-7,100 events/s in the same runs). On this VM a loopback socket send
costs about 0.7 ms of the gateway's CPU: each database round trip saved is worth that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from benchmarks.common import KeepAliveClient, bench_settings
from services.common.db import wait_and_migrate
from services.common.events import AgencyEvent, Contact, Identifier, Source
from services.common.identifiers import make_nhs_number
from services.common.kafka import ensure_topics, make_producer
from services.common.logging import configure_logging
from services.common.serde.agency_event import encode_event
from services.common.serde.agency_json import event_to_json
from services.common.settings import Settings
from services.ingest.credentials import create_agency
from services.stack.ports import free_port

SOURCE = Source("bench-trust", "MENTAL_HEALTH", "RiO", "crisis", "E08000035")


def make_events(n: int, rng: random.Random) -> list[AgencyEvent]:
    people = [make_nhs_number(rng, "999") for _ in range(max(1, n // 10))]
    at = datetime.now(UTC) - timedelta(days=1)
    return [AgencyEvent(str(uuid.UUID(int=rng.getrandbits(128), version=4)), "contact.attended",
                        at, at + timedelta(minutes=5), SOURCE,
                        (Identifier("nhs_number", rng.choice(people)),),
                        Contact(f"c-{i}", "FACE_TO_FACE")) for i in range(n)]


async def raw_produce(settings: Settings, events: list[AgencyEvent]) -> float:
    producer = make_producer(settings)
    keys = settings.subject_keys()
    await producer.start()
    try:
        started = time.perf_counter()
        sends = [await producer.send(settings.topics.agency(e.source.agency), encode_event(e),
                                     key=keys.of(e)) for e in events]
        await asyncio.gather(*sends)
        return len(events) / (time.perf_counter() - started)
    finally:
        await producer.stop()


@contextmanager
def gateway_process(settings: Settings) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_url or "",
           "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
           "JOINEDUP_DB_SCHEMA": settings.db_schema, "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
           "JOINEDUP_API_PORT": str(port), "JOINEDUP_LOG_LEVEL": "WARNING",
           "JOINEDUP_DATA_DIR": str(settings.data_dir)}
    child = subprocess.Popen([sys.executable, "-m", "services.operations.cli", "api"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not become ready")
            time.sleep(0.2)
        yield url, psutil.Process(child.pid)
    finally:
        child.terminate()
        child.wait(20)


async def batch_rate(http: httpx.AsyncClient, events: list[AgencyEvent], size: int = 100,
                     in_flight: int = 4) -> float:
    bodies = [{"events": [event_to_json(e) for e in events[i:i + size]]}
              for i in range(0, len(events), size)]
    queue = list(reversed(bodies))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while queue:
            response = await http.post("/v1/events:batch", json=queue.pop())
            response.raise_for_status()
            accepted += response.json()["counts"].get("accepted", 0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    assert accepted == len(events), f"accepted {accepted} of {len(events)}"
    return accepted / elapsed


async def steady_singles(poster: KeepAliveClient, events: list[AgencyEvent], rate: float
                         ) -> tuple[list[float], int, float]:
    """Post one event every 1/rate s; latencies (s) from each post's scheduled start."""
    latencies: list[float] = []
    failures = 0
    bodies = [json.dumps(event_to_json(e)).encode() for e in events]

    async def post(body: bytes, scheduled: float) -> None:
        nonlocal failures
        status, _ = await poster.send(body)
        latencies.append(time.perf_counter() - scheduled)
        failures += status != 202

    start = time.perf_counter()
    tasks = []
    for i, body in enumerate(bodies):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(post(body, scheduled)))
    await asyncio.gather(*tasks)
    return latencies, failures, len(bodies) / (time.perf_counter() - start)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def main(n: int, rate: float, seconds: float) -> None:
    configure_logging("WARNING", json=False)
    rng = random.Random(5)
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
        token = await create_agency(settings, SOURCE.agency, "Bench trust", "MENTAL_HEALTH")
        raw = await raw_produce(settings, make_events(n, rng))
        with gateway_process(settings) as (url, gateway):
            limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
                await batch_rate(http, make_events(1000, rng))  # warm-up
                cpu = _cpu(gateway)
                batched = await batch_rate(http, make_events(n, rng))
                batch_cpu, cpu = (_cpu(gateway) - cpu) / n, _cpu(gateway)
                singles = int(rate * seconds)
                poster = KeepAliveClient(url, "POST", "/v1/events", {
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                try:
                    latencies, failures, achieved = await steady_singles(
                        poster, make_events(singles, rng), rate)
                finally:
                    poster.close()
                single_cpu = (_cpu(gateway) - cpu) / singles
    cuts = statistics.quantiles(latencies, n=100)
    table = Table(title=f"Ingest gateway vs raw aiokafka (acks=all), {n:,} events, "
                        f"{os.cpu_count()} CPUs, loopback")
    for column in ("measure", "value", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("raw aiokafka produce", f"{raw:,.0f} events/s", "1.00 (reference)")
    table.add_row("gateway batch endpoint (100/request, 4 in flight)",
                  f"{batched:,.0f} events/s", f"{batched / raw:.2f} of raw")
    table.add_row(f"single posts, {achieved:,.0f} req/s for {seconds:g} s: p50",
                  f"{cuts[49] * 1000:.1f} ms", "")
    table.add_row("single posts: p99", f"{cuts[98] * 1000:.1f} ms", "")
    table.add_row("single posts: max / not 202", f"{max(latencies) * 1000:.1f} ms / {failures}",
                  "")
    table.add_row("single posts as throughput", f"{achieved:,.0f} events/s",
                  f"{achieved / raw:.3f} of raw (offered load, not a ceiling)")
    table.add_row("gateway CPU per event: batch / single",
                  f"{batch_cpu * 1000:.2f} / {single_cpu * 1000:.2f} ms", "")
    Console().print(table)
    Console().print(f"load average during the run: {os.getloadavg()[0]:.1f} "
                    "(other processes on the machine skew every figure)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rate, args.seconds))
