"""`joinedup rebuild` throughput from the archive, with every read model and the rule pack,
next to PostgreSQL COPY of the same archive rows, with where the time goes per event.

The archive is loaded straight with COPY (as the live pipeline would have archived a
simulated population: per partition in log order, positions recorded), which is itself the
COPY reference. Then, in the same run on the same machine:
  1. `joinedup rebuild` of every read model into a shadow schema (the rule pack included),
     in one process per core over disjoint partitions, and again in one process;
  2. the dry-run sink over the same archive (the same folds, in memory, nothing written);
and a table of microseconds per event for each stage of the rebuild (archive fetch, decode,
each read model's load, fold and save), with the CPU split between this process and
PostgreSQL.
Run: `make bench-rebuild` (default about 1,000,000 events; `--people`, `--months`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import psutil
from rich.console import Console
from rich.table import Table

from benchmarks.common import bench_settings, print_table
from projections.queries import backbone as sql
from projections.queries.read_models import ARCHIVE_AFTER
from services.common.db import wait_and_migrate
from services.common.events import AgencyEvent
from services.common.logging import configure_logging
from services.common.runtime import tune_for_streaming
from services.common.serde.agency_event import encode_event
from services.common.settings import Settings
from services.operations.rebuild import Rebuild
from services.operations.simulate import generate
from services.processor.read_models import ReadModel
from services.processor.sources import ArchiveSource, Chunk

STAGES: Counter[str] = Counter()  # stage -> seconds


def timed(stage: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            STAGES[stage] += time.perf_counter() - started
    return run


async def load_archive(settings: Settings, events: list[AgencyEvent]) -> tuple[int, float]:
    """COPY the events into the archive as the live pipeline would have; (rows, rows/s)."""
    topic, partitions = settings.topics.person_events, settings.topic_partitions
    offsets = [0] * partitions
    rows, seen = [], set()
    for event in events:
        if (event.source.agency, event.event_id) in seen:
            continue
        seen.add((event.source.agency, event.event_id))
        # a stand-in for the person id the identity step would have filed it under
        person = str(uuid.uuid5(uuid.NAMESPACE_OID, event.identifier_key))
        partition = zlib.crc32(person.encode()) % partitions
        rows.append((uuid.UUID(event.event_id), person, event.event_type,
                     event.source.agency, event.occurred_at, event.recorded_at,
                     event.schema_version, event.sensitivity, encode_event(event), topic,
                     partition, offsets[partition]))
        offsets[partition] += 1
    conn = await asyncpg.connect(settings.database_url,
                                 server_settings={"search_path": settings.db_schema})
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table("event_archive", columns=sql.ARCHIVE_COLUMNS,
                                         records=rows)
        rate = len(rows) / (time.perf_counter() - started)
        await conn.executemany(
            "INSERT INTO consumer_position (consumer, topic, partition, next_offset) "
            "VALUES ($1, $2, $3, $4)",
            [(settings.processor_group, topic, p, offsets[p]) for p in range(partitions)])
    finally:
        await conn.close()
    return len(rows), rate


def instrument(rebuild: Rebuild) -> None:
    """Time every stage of the rebuild where it happens (the same code, wrapped)."""
    async def read(self: ArchiveSource, conn: asyncpg.Connection, partition: int,
                   after_seq: int, limit: int) -> Chunk:
        started = time.perf_counter()
        fetched = await conn.fetch(ARCHIVE_AFTER, self.topic, partition, after_seq, limit)
        decoding = time.perf_counter()
        STAGES["archive fetch"] += decoding - started
        batch = [(row["seq"], self.received(row, partition)) for row in fetched]
        STAGES["decode"] += time.perf_counter() - decoding
        return Chunk(batch, batch[-1][0] if batch else None)

    ArchiveSource.read = read  # type: ignore[method-assign]
    fold_all = ReadModel.fold_all

    def timed_fold(self: ReadModel[Any, Any, Any], states: dict[Any, Any],
                   events: Sequence[AgencyEvent]) -> list[Any]:
        started = time.perf_counter()
        try:
            return fold_all(self, states, events)
        finally:
            STAGES[f"{self.name}: fold"] += time.perf_counter() - started

    ReadModel.fold_all = timed_fold  # type: ignore[method-assign]
    for model in rebuild.registry.models:
        store: Any = model.store
        store.load = timed(f"{model.name}: load", store.load)
        store.save = timed(f"{model.name}: save", store.save)


def postgres_cpu() -> float:
    """CPU seconds of this benchmark's own PostgreSQL (the embedded one it started; with
    DATABASE_URL given, 0): its processes' own, and what the postmaster has reaped of
    backends that have exited (a pool's connections end before the measurement does)."""
    total = 0.0
    for process in psutil.Process().children(recursive=True):
        try:
            if not process.name().startswith("postgres"):
                continue
            times = process.cpu_times()
            total += times.user + times.system
            if not process.parent().name().startswith("postgres"):  # the postmaster
                total += times.children_user + times.children_system
        except (psutil.Error, AttributeError):
            continue
    return total


async def main(people: int, months: int, workers: int) -> None:
    configure_logging("WARNING", json=False)
    console = Console()
    events = generate(11, people, months, datetime(2026, 1, 5, tzinfo=UTC))
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        n, copy = await load_archive(settings, events)
        console.print(f"archive: {n:,} events for {people:,} people (COPY {copy:,.0f} rows/s)")

        dry = Rebuild(settings, console=Console(quiet=True))
        started = time.perf_counter()
        await dry.dry_run()
        dry_rate = n / (time.perf_counter() - started)

        parallel = Rebuild(settings, shadow=f"{settings.db_schema}_parallel",
                           console=Console(quiet=True), workers=workers)
        started = time.perf_counter()
        await parallel.run()
        parallel_rate = n / (time.perf_counter() - started)

        rebuild = Rebuild(settings, console=console)
        instrument(rebuild)
        me = psutil.Process()
        cpu_me, cpu_pg = sum(me.cpu_times()[:2]), postgres_cpu()
        started = time.perf_counter()
        await rebuild.run()
        elapsed = time.perf_counter() - started
        cpu_me, cpu_pg = sum(me.cpu_times()[:2]) - cpu_me, postgres_cpu() - cpu_pg
        conn = await asyncpg.connect(settings.database_url)
        try:
            rebuilt = await conn.fetchval(
                f'SELECT count(*) FROM "{rebuild.shadow}".timeline_entry')
        finally:
            await conn.close()
        assert rebuilt == n, f"the shadow timeline holds {rebuilt} of {n} events"
    rate = n / elapsed
    print_table(f"Rebuild from the archive, {n:,} events, every read model and the rule pack",
                [("PostgreSQL COPY of the archive rows", copy, "1.00 (reference)"),
                 ("joinedup rebuild (5 read models, rule pack), one process", rate,
                  f"{rate / copy:.3f} of COPY"),
                 (f"the same, {workers} processes over disjoint partitions", parallel_rate,
                  f"{parallel_rate / copy:.3f} of COPY, {parallel_rate / rate:.2f}x one "
                  "process; target 25,000 events/s"),
                 ("dry-run sink (same folds, in memory)", dry_rate, f"{dry_rate / copy:.3f} of COPY")],
                f"load average {psutil.getloadavg()[0]:.1f}; CPU during the rebuild: this "
                f"process {cpu_me:.1f} s, PostgreSQL {cpu_pg:.1f} s, wall {elapsed:.1f} s")
    table = Table(title="Where a rebuilt event's time goes (µs per event)")
    table.add_column("stage")
    table.add_column("µs/event", justify="right")
    table.add_column("share", justify="right")
    for stage, seconds in sorted(STAGES.items(), key=lambda kv: -kv[1]):
        table.add_row(stage, f"{seconds / n * 1e6:,.1f}", f"{seconds / elapsed:.0%}")
    other = elapsed - sum(STAGES.values())
    table.add_row("other (transactions, positions, locks)", f"{other / n * 1e6:,.1f}",
                  f"{other / elapsed:.0%}")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=40_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    tune_for_streaming()  # as the worker and `joinedup rebuild` do
    asyncio.run(main(args.people, args.months, args.workers))
