"""Scale-out: one and two real `joinedup worker` processes over the same backlog.

Preloads the agencies' topics with a simulated population (as direct publishers would), then
measures in the same run on the same machine:
  1. raw aiokafka: getmany() over the agency topics, counting messages (the reference);
  2. one worker (admission, identity, processor with the full rule pack, alert projector);
  3. two workers in one consumer group over the same backlog (its own topics, schema and
     group, so neither run sees the other's work), each worker a process of its own.
A worker run's rate is events archived (or parked) per second, from the moment every worker
has applied something to the last event. Each worker's share comes from its /metrics.
Run: `make bench-scale-out` (or `python -m benchmarks.bench_scale_out --people 2000`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.bench_processor import check_timeline, raw_consume
from benchmarks.common import bench_settings, print_table
from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.operations.simulate import generate, publish_events, register_simulated_agencies
from services.stack.ports import free_port

_SETTLED = "SELECT (SELECT count(*) FROM event_archive) + (SELECT count(*) FROM dead_letter)"


def spawn_worker(settings: Settings, data_dir: Path, health_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap or "",
        "JOINEDUP_DB_SCHEMA": settings.db_schema,
        "JOINEDUP_TOPIC_PREFIX": settings.topic_prefix,
        "JOINEDUP_PROCESSOR_GROUP": settings.processor_group,
        "JOINEDUP_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "JOINEDUP_DATA_DIR": str(data_dir),
        "JOINEDUP_LOG_LEVEL": "WARNING",
        "JOINEDUP_WORKER_HEALTH_PORT": str(health_port),
    }
    log = open(data_dir / f"worker-{health_port}.log", "wb")  # noqa: SIM115 (the child's)
    return subprocess.Popen([sys.executable, "-m", "services.operations.cli", "worker"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)


async def applied_by(port: int, consumer: str) -> int:
    """Records the worker's intake applied (0 while its /metrics is not served yet)."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.TransportError:
        return 0
    return int(sum(s.value for f in text_string_to_metric_families(text)
                   if f.name == "joinedup_consumer_records" for s in f.samples
                   if s.name.endswith("_total") and s.labels.get("consumer") == consumer))


async def workers_rate(settings: Settings, expected: int, workers: int
                       ) -> tuple[float, list[int]]:
    """Events/s of `workers` worker processes started together over the preloaded backlog,
    and how many records each one's intake applied. The clock starts once every worker has
    applied something (the group has shared the partitions: Tansu's join takes seconds,
    which a backlog of hours would not notice)."""
    ports = [free_port() for _ in range(workers)]
    processes = [spawn_worker(settings, settings.data_dir, port) for port in ports]
    pool = await create_pool(settings, max_size=1)
    try:
        started: float | None = None
        first = 0
        while True:
            done = await pool.fetchval(_SETTLED)
            if started is None and done > 0 and all(
                    [await applied_by(p, settings.processor_group) > 0 for p in ports]):
                started, first = time.perf_counter(), done
            if done >= expected:
                assert started is not None
                rate = (done - first) / (time.perf_counter() - started)
                return rate, [await applied_by(p, settings.processor_group) for p in ports]
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a worker exited; see its log in " + str(settings.data_dir))
            await asyncio.sleep(0.05)
    finally:
        await pool.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


async def own_run(settings: Settings, events: list[AgencyEvent], workers: int
                  ) -> tuple[float, list[int]]:
    """The backlog on topics, schema and group of this run's own."""
    run = settings.model_copy(update={
        "db_schema": f"{settings.db_schema}_w{workers}",
        "topic_prefix": f"{settings.topic_prefix}w{workers}",
        "processor_group": f"{settings.processor_group}-w{workers}",
        "admission_group": f"{settings.processor_group}-w{workers}-admission"})
    await wait_and_migrate(run)
    await register_simulated_agencies(run)
    await publish_events(run, events, show_progress=False)
    rate, shares = await workers_rate(run, len(events), workers)
    await check_timeline(run, len(events))
    return rate, shares


async def main(people: int, months: int) -> None:
    configure_logging("WARNING", json=False)
    events = generate(13, people, months, datetime(2026, 1, 5, tzinfo=UTC))
    n = len(events)
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        await register_simulated_agencies(settings)
        await publish_events(settings, events, show_progress=False)
        print(f"preloaded {n:,} events for {people:,} people, "
              f"{settings.topic_partitions} partitions a topic, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}")
        raw = await raw_consume(settings, n, {e.source.agency for e in events})
        one, _ = await own_run(settings, events, 1)
        two, shares = await own_run(settings, events, 2)
    print_table(f"Scale-out, {n:,} events, full rule pack", [
        ("raw aiokafka consume", raw, "1.00 (reference)"),
        ("one worker", one, f"{one / raw:.3f} of aiokafka"),
        ("two workers, one group", two,
         f"{two / raw:.3f} of aiokafka, {two / one:.2f}x one worker"),
    ], note=f"records applied by each of the two workers' intakes: {shares}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=8_000)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(main(args.people, args.months))
