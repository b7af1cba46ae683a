"""`joinedup explain` for one person with 500 archived events, against two references.

A simulated population's events (``services.simulation``) are given to one person until
they have 500, archived as the live pipeline archives them (Avro bodies, ``seq`` order), in
an embedded PostgreSQL. Then, over ``--repeats`` runs each:

- **explain**: ``services.operations.investigate.explain``, the whole of it: resolve the
  person, read and open their archived events, trace the rule pack's fold with near misses
  and possible matches, write the access-audit row, in one transaction;
- **archive read** (reference): the same archive query alone, rows fetched;
- **engine fold** (reference): ``apply_event`` over the same events in memory, as the rules
  read model folds them, without the trace.

Printed: p50 and p95 in milliseconds, and the ratio of explain's p50 to each reference's.
Run: `make bench-explain` (or `python -m benchmarks.bench_explain --events 500 --repeats 50`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from rich.console import Console
from rich.table import Table

from benchmarks.common import bench_settings
from projections.queries import investigate as sql
from services.common.db import create_pool, wait_and_migrate
from services.common.events import AgencyEvent, Identifier
from services.common.serde.agency_event import encode_event
from services.identity.key_ring import KeyRing
from services.operations import investigate
from services.operations.investigate import Investigation
from services.processor.bootstrap import load_pack
from services.processor.domain.rules import PersonRuleState, RulePack, apply_event
from services.processor.opening import Opener
from services.reads.domain.audit import Caller
from services.simulation import simulate

START = datetime(2025, 1, 6, tzinfo=UTC)
NHS = "9434765919"


def one_person(count: int, seed: int) -> list[AgencyEvent]:
    """``count`` simulated events, all one person's, in recorded-at order (several
    people's lives at once: discharges, releases, referrals and contacts in plenty)."""
    events = simulate(seed, max(40, count // 8), 24, START)[:count]
    if len(events) < count:
        raise SystemExit(f"the simulation made only {len(events)} events")
    return [dataclasses.replace(e, identifiers=(Identifier("nhs_number", NHS),))
            for e in events]


async def archive(pool: asyncpg.Pool, person: str, events: list[AgencyEvent]) -> None:
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO person_index (person_id, current_id, created_at) "
                           "VALUES ($1::uuid, $1::uuid, now())", person)
        await conn.executemany(
            "INSERT INTO event_archive (event_id, person_key, event_type, source_agency, "
            "occurred_at, recorded_at, schema_version, sensitivity, body, kafka_topic, "
            "kafka_partition, kafka_offset) "
            "VALUES ($1::uuid, $2, $3, $4, $5, $6, 3, $7, $8, 'bench', 0, $9)",
            [(e.event_id, person, e.event_type, e.source.agency, e.occurred_at, e.recorded_at,
              e.sensitivity, encode_event(e), i) for i, e in enumerate(events)])


def plain_fold(pack: RulePack, person: str, events: list[AgencyEvent]) -> None:
    state = PersonRuleState(person)
    for event in events:
        state = apply_event(pack, state, event, event.recorded_at).state


async def timed(repeats: int, run: Callable[[], Awaitable[object]]) -> list[float]:
    await run()  # warm: prepared statements, caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return times


async def measure(count: int, repeats: int, seed: int) -> None:
    with bench_settings() as settings:
        await wait_and_migrate(settings)
        pool = await create_pool(settings, max_size=2)
        try:
            pack = load_pack(settings)
            person = str(uuid.uuid4())
            events = one_person(count, seed)
            await archive(pool, person, events)
            how = Investigation(pack, Opener(KeyRing(settings.key_encryption_key())),
                                Caller.for_operator("bench"), "audit")
            now = datetime.now(UTC)
            found = await investigate.explain(pool, how, person, now)

            async def explain() -> object:
                return await investigate.explain(pool, how, person, now)

            async def read() -> object:
                return await pool.fetch(sql.KNOWN_EVENTS, [person], None)

            async def fold() -> None:
                plain_fold(pack, person, events)

            rows = [("explain (read, open, trace, audit)", await timed(repeats, explain)),
                    ("reference: archive read of the same rows", await timed(repeats, read)),
                    ("reference: engine fold, no trace", await timed(repeats, fold))]
        finally:
            await pool.close()
    expectations = sum(len(r.expectations) for r in found.rules)
    table = Table(title=f"explain one person: {found.events} archived events, "
                        f"{expectations} expectations traced, {repeats} runs each")
    for column in ("measure", "p50 ms", "p95 ms", "explain p50 / this p50"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    base = statistics.median(rows[0][1])
    for name, times in rows:
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        table.add_row(name, f"{p50:.1f}", f"{p95:.1f}", f"{base / p50:.1f}x")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500, help="the person's events")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs of each measure")
    parser.add_argument("--seed", type=int, default=7, help="the simulation's seed")
    args = parser.parse_args()
    asyncio.run(measure(args.events, args.repeats, args.seed))


if __name__ == "__main__":
    main()
