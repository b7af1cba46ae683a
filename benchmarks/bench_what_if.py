"""`joinedup what-if` throughput over the archive (the 72-hour follow-up window shortened to
24 hours), next to PostgreSQL COPY of the same archive rows and raw aiokafka consumption of
the same records, all measured in the same run on the same machine.

1. a simulated population (~1,000,000 events by default) is COPYed into the event archive as
   the live pipeline would have archived it: the COPY rate is the first reference;
2. the same archived bodies are produced to the person-events topic of the embedded broker
   and consumed back with a bare aiokafka consumer (getmany, counting records): the second
   reference;
3. the what-if folds the current pack and the shortened one side by side over the whole
   archive (one decode, two folds an event), and the time goes per stage is shown.
Run: `make bench-what-if` (`--people`, `--months`, `--log-records`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

from benchmarks.bench_rebuild import load_archive
from benchmarks.common import bench_settings, print_table
from projections.queries.read_models import ARCHIVE_AFTER
from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent
from services.common.kafka import ensure_topics, stop_consumer
from services.common.logging import configure_logging
from services.common.runtime import tune_for_streaming
from services.common.settings import Settings
from services.operations import what_if as pure
from services.operations.dry_run import History, archived, what_if_report
from services.operations.simulate import generate
from services.processor.domain.rules import RulePack, default_pack_path, load_rule_pack

STAGES: defaultdict[str, float] = defaultdict(float)  # stage -> seconds
RULE = "mh-72h-follow-up"


def shortened() -> RulePack:
    text = default_pack_path().read_text()
    head, rule, rest = text.partition(f'id = "{RULE}"')
    head = head.replace('version = "', 'version = "what-if-', 1)
    return load_rule_pack(head + rule + rest.replace('within = "72h"', 'within = "24h"', 1))


async def produce_archive(settings: Settings, limit: int) -> int:
    """The archived bodies onto the person-events topic, each to its archived partition."""
    await ensure_topics(settings)
    topic = settings.topics.person_events
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks=1,
                                linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    conn = await asyncpg.connect(settings.database_url,
                                 server_settings={"search_path": settings.db_schema})
    sent = 0
    try:
        for partition in range(settings.topic_partitions):
            seq = 0
            while sent < limit and (rows := await conn.fetch(ARCHIVE_AFTER, topic, partition,
                                                              seq, 20_000)):
                seq = rows[-1]["seq"]
                rows = rows[:limit - sent]
                pending = [await producer.send(topic, bytes(r["body"]), partition=partition)
                           for r in rows]
                await asyncio.gather(*pending)
                sent += len(rows)
    finally:
        await conn.close()
        await producer.stop()
    return sent


async def raw_consume(settings: Settings, expected: int) -> float:
    topic = settings.topics.person_events
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_bytes=32 * 1024 * 1024,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
        started, seen = time.perf_counter(), 0
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=1000,
                                                   max_records=10_000)).values():
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await stop_consumer(consumer)


def timed(history: History) -> History:
    """The history with the time spent reading and decoding it counted."""
    async def batches(conn: asyncpg.Connection) -> AsyncIterator[list[AgencyEvent]]:
        inner = history(conn).__aiter__()
        while True:
            started = time.perf_counter()
            try:
                batch = await inner.__anext__()
            except StopAsyncIteration:
                return
            finally:
                STAGES["archive fetch + decode"] += time.perf_counter() - started
            yield batch
    return batches


def instrument() -> None:
    """Time each pack's fold and the final sweep where they happen (the same code)."""
    fold, finish = pure.PackRun.fold, pure.PackRun.finish

    def timed_fold(self: pure.PackRun, events: Iterable[AgencyEvent]) -> None:
        started = time.perf_counter()
        fold(self, events)
        STAGES[f"fold, pack {self.pack.version}"] += time.perf_counter() - started

    def timed_finish(self: pure.PackRun, now: datetime) -> None:
        started = time.perf_counter()
        finish(self, now)
        STAGES["deadline sweep at now, both packs"] += time.perf_counter() - started

    pure.PackRun.fold = timed_fold  # type: ignore[method-assign]
    pure.PackRun.finish = timed_finish  # type: ignore[method-assign]


async def main(people: int, months: int, log_records: int | None) -> None:
    configure_logging("WARNING", json=False)
    console = Console()
    started = time.perf_counter()
    events = generate(11, people, months, datetime(2026, 1, 5, tzinfo=UTC))
    console.print(f"simulated {len(events):,} events for {people:,} people in "
                  f"{time.perf_counter() - started:.0f} s")
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        n, copy = await load_archive(settings, events)
        del events
        console.print(f"archive: {n:,} events (COPY {copy:,.0f} rows/s)")
        logged = await produce_archive(settings, log_records or n)
        raw = await raw_consume(settings, logged)
        console.print(f"log: {logged:,} records (raw aiokafka consume {raw:,.0f}/s)")

        current, changed = load_rule_pack(default_pack_path()), shortened()
        instrument()
        pool = await create_pool(settings, max_size=1)
        try:
            me = psutil.Process()
            cpu = sum(me.cpu_times()[:2])
            started = time.perf_counter()
            found = await what_if_report(
                pool, timed(archived(settings.topics.person_events, None, 5000)), current,
                changed)
            elapsed = time.perf_counter() - started
            cpu = sum(me.cpu_times()[:2]) - cpu
        finally:
            await pool.close()
    assert found["events"] == n, f"the what-if folded {found['events']} of {n} events"
    rate = n / elapsed
    rule = next(r for r in found["rules"] if r["rule"] == RULE)  # type: ignore[attr-defined]
    print_table(f"Rule what-if over the archive, {n:,} events, {RULE} window 72h -> 24h",
                [("PostgreSQL COPY of the archive rows", copy, "1.00 (reference)"),
                 (f"raw aiokafka consume ({logged:,} records)", raw, "1.00 (reference)"),
                 ("joinedup what-if (rules read model, two packs, one decode)", rate,
                  f"{rate / copy:.3f} of COPY, {rate / raw:.3f} of aiokafka")],
                f"load average {psutil.getloadavg()[0]:.1f}; wall {elapsed:.1f} s, this "
                f"process CPU {cpu:.1f} s; {RULE}: {rule['current']['alerts']:,} alerts -> "
                f"{rule['changed']['alerts']:,} ({rule['new']['alerts']:,} new for "
                f"{rule['new']['people']:,} people, {rule['deadline_changed']['alerts']:,} "
                f"with an earlier deadline)")
    table = Table(title="Where a what-if event's time goes (µs per event)")
    table.add_column("stage")
    table.add_column("µs/event", justify="right")
    table.add_column("share", justify="right")
    for stage, seconds in sorted(STAGES.items(), key=lambda kv: -kv[1]):
        table.add_row(stage, f"{seconds / n * 1e6:,.1f}", f"{seconds / elapsed:.0%}")
    other = elapsed - sum(STAGES.values())
    table.add_row("other", f"{other / n * 1e6:,.1f}", f"{other / elapsed:.0%}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=40_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--log-records", type=int, default=None,
                        help="records produced to the log and consumed raw (default: all)")
    args = parser.parse_args()
    tune_for_streaming()  # as `joinedup what-if` does
    asyncio.run(main(args.people, args.months, args.log_records))
