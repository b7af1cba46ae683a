"""The identity step's throughput (admission: read each agency topic, check the event,
resolve its identifiers to a person id in the person index, forward it keyed by that id,
track the position), next to raw aiokafka consume + produce of the same messages.

Preloads the agencies' topics with a simulated population, as direct publishers would, then
measures in the same run on the same machine:
  1. raw aiokafka: getmany() over the agency topics, each record produced again (same key
     and value, acks=all) to a scratch topic, every acknowledgement awaited;
  2. admission alone (no processor): until its tracked positions cover every message; the
     person index (in memory and PostgreSQL) starts empty, so every person is new once.
Run: `make bench-identity` (or `python -m benchmarks.bench_identity --people 20000`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer

from benchmarks.common import bench_settings, print_table
from services.admission.bootstrap import build_admission
from services.common.db import create_pool, wait_and_migrate
from services.common.dead_letters import DeadLetterTopic
from services.common.health import Health
from services.common.kafka import ensure_topics, make_producer, stop_consumer
from services.common.logging import configure_logging
from services.common.runtime import tune_for_streaming
from services.common.settings import Settings
from services.common.tracked_consumer import ConsumerMetrics
from services.operations.simulate import generate, publish_events, register_simulated_agencies

_FORWARDED = "SELECT coalesce(sum(next_offset), 0) FROM consumer_position WHERE consumer = $1"


async def raw_consume_produce(settings: Settings, expected: int, agencies: set[str]) -> float:
    scratch = f"{settings.topic_prefix}.scratch"
    await ensure_topics(settings, (scratch,))
    consumer = AIOKafkaConsumer(
        *(settings.topics.agency(a) for a in sorted(agencies)),
        bootstrap_servers=settings.kafka_bootstrap, group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False,
        fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    try:
        started, seen = time.perf_counter(), 0
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5_000)).values():
                sends = [await producer.send(scratch, r.value, key=r.key) for r in records]
                await asyncio.gather(*sends)
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await stop_consumer(consumer)
        await producer.stop()


async def identity_step_rate(settings: Settings, expected: int) -> tuple[float, int]:
    """(messages/s through admission and the identity step, people in the index)."""
    pool = await create_pool(settings, max_size=5)
    producer = make_producer(settings)
    await producer.start()
    stopping = asyncio.Event()
    try:
        admission = build_admission(settings, pool, producer,
                                    DeadLetterTopic(producer, settings.topics.dead_letter),
                                    Health(), ConsumerMetrics())
        task = asyncio.create_task(admission.run(stopping))
        started = None
        while True:
            done = int(await pool.fetchval(_FORWARDED, settings.admission_group))
            if started is None and done > 0:
                started, first = time.perf_counter(), done
            if done >= expected:
                assert started is not None
                rate = (done - first) / (time.perf_counter() - started)
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        stopping.set()
        await task
        people = await pool.fetchval("SELECT count(*) FROM person_index")
        return rate, int(people)
    finally:
        await producer.stop()
        await pool.close()


async def main(people: int, months: int) -> None:
    configure_logging("WARNING", json=False)
    events = generate(11, people, months, datetime(2026, 1, 5, tzinfo=UTC))
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
        await register_simulated_agencies(settings)
        await publish_events(settings, events, show_progress=False)
        n = len(events)
        print(f"preloaded {n:,} events for {people:,} people")
        raw = await raw_consume_produce(settings, n, {e.source.agency for e in events})
        rate, indexed = await identity_step_rate(settings, n)
    truth = len({e.identifier_key for e in events})
    print_table(f"Identity step throughput, {n:,} events, one process", [
        ("raw aiokafka consume + produce", raw, "1.00 (reference)"),
        ("admission with the identity step", rate, f"{rate / raw:.2f} of aiokafka"),
    ], note=f"person index: {indexed:,} people for {truth:,} simulated people")
    assert indexed == truth, "every simulated person is one person in the index"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    tune_for_streaming()
    asyncio.run(main(args.people, args.months))
