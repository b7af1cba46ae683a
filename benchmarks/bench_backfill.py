"""What an onboarding backfill costs (issue 17, item 9), measured in one run on one machine.

A simulated population's history (default 5,000 people over 12 months, ending now) is
processed twice with the full rule pack, each run in its own schema and topics:
1. live, the reference: every event judged as it comes;
2. as a backfill: every agency's backfill opened first with the cut-over now, so all of it
   is history and its deadlines are held.
Then the deadline timer's work: on the live schema one tick fires every expectation past
due (the reference); on the backfill's, after `finish`, one tick releases the held ones and
fires those due. Printed: events/s and expectations/s with the backfill's ratio to live.
Run: `python -m benchmarks.bench_backfill [--people N --months M]`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from benchmarks.bench_processor import processor_rate
from benchmarks.common import bench_settings, print_table
from services.common.db import create_pool, wait_and_migrate
from services.common.logging import configure_logging
from services.common.settings import Settings
from services.operations.backfill_store import finish_backfill, open_backfill
from services.operations.simulate import generate, publish_events, register_simulated_agencies
from services.processor.bootstrap import build_processor
from services.processor.clock import WallClock
from services.processor.rules_stage import DeadlineWatch, RuleStage

_OPEN = "SELECT count(*) FROM expectation WHERE status = 'open'"


async def _prepared(settings: Settings, events: list, agencies: set[str],  # type: ignore[type-arg]
                    cut_over: datetime | None) -> None:
    await wait_and_migrate(settings)
    await register_simulated_agencies(settings)
    if cut_over is not None:
        pool = await create_pool(settings, max_size=1)
        try:
            async with pool.acquire() as conn:
                for agency in sorted(agencies):
                    await open_backfill(conn, agency, cut_over, "bench")
        finally:
            await pool.close()
    await publish_events(settings, events, show_progress=False)


class _Unpublished:
    async def publish(self) -> int:
        return 0


async def _timer_rate(settings: Settings, finish: set[str]) -> tuple[float, int]:
    """One deadline sweep over every partition (after finishing ``finish``'s backfills):
    expectations taken off the open list per second, and how many."""
    processor = await build_processor(settings, migrate=False)
    try:
        async with processor.pool.acquire() as conn:
            for agency in sorted(finish):
                await finish_backfill(conn, agency, "bench")
        before = await processor.pool.fetchval(_OPEN)
        partitions = list(range(settings.topic_partitions))
        # every partition (nothing else is running); alert events left in the outbox
        watch = DeadlineWatch(processor.pool, RuleStage(processor.pack), WallClock(),
                              _Unpublished(), lambda: partitions,
                              topic=settings.topics.person_events,
                              grace=timedelta(seconds=settings.deadline_grace_seconds))
        started = time.perf_counter()
        await watch.tick()
        elapsed = time.perf_counter() - started
        done = before - await processor.pool.fetchval(_OPEN)
        return done / elapsed, done
    finally:
        await processor.close()


async def main(people: int, months: int) -> None:
    configure_logging("WARNING", json=False)
    now = datetime.now(UTC)
    events = generate(11, people, months, now - timedelta(days=30 * months + 7))
    events = [e for e in events if e.recorded_at < now]
    agencies = {e.source.agency for e in events}
    n = len(events)
    with bench_settings() as live:
        backfilled = live.model_copy(update={
            "db_schema": live.db_schema + "_backfill", "topic_prefix": live.topic_prefix + "b",
            "processor_group": live.processor_group + "-backfill",
            "admission_group": live.processor_group + "-backfill-admission"})
        await _prepared(live, events, agencies, None)
        live_rate = await processor_rate(live, n, rules=True)
        await _prepared(backfilled, events, agencies, now)
        history_rate = await processor_rate(backfilled, n, rules=True)
        fire_rate, fired = await _timer_rate(live, set())
        release_rate, released = await _timer_rate(backfilled, agencies)
    print(f"{n:,} events of {people:,} people over {months} months; "
          f"{fired:,} expectations past due live, {released:,} held and released")
    print_table(f"Onboarding backfill, {n:,} events, one worker", [
        ("processor, live (reference)", live_rate, "1.00 (reference)"),
        ("processor, all of it history", history_rate, f"{history_rate / live_rate:.2f} of live"),
        ("timer tick firing what is past due, live (reference)", fire_rate, "1.00 (reference)"),
        ("timer tick after finish: release and fire", release_rate,
         f"{release_rate / fire_rate:.2f} of live"),
    ], note="rates are events/s for the processor rows, expectations/s for the timer rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=5000, help="how many simulated people")
    parser.add_argument("--months", type=int, default=12, help="how many months of history")
    args = parser.parse_args()
    asyncio.run(main(args.people, args.months))
