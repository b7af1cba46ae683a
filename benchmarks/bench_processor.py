"""Processor throughput into the timeline, next to raw aiokafka consumption and COPY.

Preloads the agencies' topics with a simulated population (>= 200,000 events), as direct
publishers would, then measures in the same run on the same machine:
  1. raw aiokafka: getmany() over the agency topics, counting messages;
  2. PostgreSQL COPY of the same timeline rows into a scratch table;
  3. the worker's pipeline, one process: admission (decode, check the publisher owns the
     topic, forward keyed by person) and the processor (decode, check, archive, fold
     timeline, referrals and caseload, write, track the position), rule pack on or off.
Run: `make bench` (or `python benchmarks/bench_processor.py --people 20000`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer

from benchmarks.common import bench_settings, print_table
from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent
from services.common.kafka import stop_consumer
from services.common.logging import configure_logging
from services.common.runtime import tune_for_streaming
from services.common.settings import Settings
from services.operations.simulate import generate, publish_events, register_simulated_agencies
from services.processor.bootstrap import build_processor
from services.processor.domain.timeline import timeline_entry

_SETTLED = "SELECT (SELECT count(*) FROM event_archive) + (SELECT count(*) FROM dead_letter)"


async def raw_consume(settings: Settings, expected: int, agencies: set[str]) -> float:
    consumer = AIOKafkaConsumer(
        *(settings.topics.agency(a) for a in sorted(agencies)),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
        fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        started, seen = time.perf_counter(), 0
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await stop_consumer(consumer)


async def copy_rows(settings: Settings, events: list[AgencyEvent]) -> float:
    rows = [(t.person_key, t.occurred_at, t.recorded_at, t.event_id, t.event_type,
             t.source_agency, t.service_kind, t.sensitivity, t.summary)
            for t in map(timeline_entry, events)]
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("CREATE TEMP TABLE copy_probe (LIKE "
                           f'"{settings.db_schema}".timeline_entry)')
        started = time.perf_counter()
        await conn.copy_records_to_table("copy_probe", records=rows)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def processor_rate(settings: Settings, expected: int, rules: bool) -> float:
    await wait_and_migrate(settings)
    processor = await build_processor(settings, migrate=False, rules=rules)
    task = asyncio.create_task(processor.run())
    try:
        started = None
        while True:
            done = await processor.pool.fetchval(_SETTLED)
            if started is None and done > 0:
                started, first = time.perf_counter(), done
            if done >= expected:
                assert started is not None
                return (done - first) / (time.perf_counter() - started)
            await asyncio.sleep(0.05)
    finally:
        processor.stopping.set()
        await task
        await processor.close()


async def main(people: int, months: int, rules: bool) -> None:
    configure_logging("WARNING", json=False)
    events = generate(11, people, months, datetime(2026, 1, 5, tzinfo=UTC))
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        await register_simulated_agencies(settings)
        await publish_events(settings, events, show_progress=False)
        n = len(events)
        print(f"preloaded {n:,} events for {people:,} people")
        raw = await raw_consume(settings, n, {e.source.agency for e in events})
        copy = await copy_rows(settings, events)
        rate = await processor_rate(settings, n, rules=False)
        await check_timeline(settings, n)
        # Its own topics too: person-events keyed by the first run's person ids would be
        # re-keyed by this run's processor (another person index), distorting the rate.
        with_rules = settings.model_copy(update={
            "db_schema": settings.db_schema + "_rules",
            "topic_prefix": settings.topic_prefix + "r",
            "processor_group": settings.processor_group + "-rules",
            "admission_group": settings.processor_group + "-rules-admission"})
        await wait_and_migrate(with_rules)
        await register_simulated_agencies(with_rules)
        if rules:
            await publish_events(with_rules, events, show_progress=False)
        rules_rate = await processor_rate(with_rules, n, rules=True) if rules else 0.0
        if rules:
            await check_timeline(with_rules, n)
    rows = [
        ("raw aiokafka consume", raw, "1.00 (reference)"),
        ("PostgreSQL COPY (timeline rows)", copy, "1.00 (reference)"),
        ("processor into timeline, no rules", rate,
         f"{rate / raw:.2f} of aiokafka, {rate / copy:.2f} of COPY"),
    ]
    if rules:
        rows.append(("processor with the full rule pack", rules_rate,
                     f"{rules_rate / rate:.2f} of no-rules, {rules_rate / copy:.2f} of COPY"))
    print_table(f"Processor throughput, {n:,} events, one worker", rows)


async def check_timeline(settings: Settings, expected: int) -> None:
    pool = await create_pool(settings)
    try:
        timeline = await pool.fetchval("SELECT count(*) FROM timeline_entry")
    finally:
        await pool.close()
    assert timeline == expected, f"timeline holds {timeline} of {expected} events"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--no-rules", action="store_true", help="skip the rule-pack run")
    args = parser.parse_args()
    tune_for_streaming()  # as the worker and `joinedup rebuild` do
    asyncio.run(main(args.people, args.months, not args.no_rules))
