"""The rules engine on its own: apply_event over a simulated population, no broker, no database.

Generates a population with ``services.simulation.simulate``, then folds every event, in stream
order, through ``apply_event`` with one ``PersonRuleState`` per person, as ``RuleStage`` does
inside the processor's batch transaction. Reports events/s and µs/event for the fold alone
(generation is not timed).

``--profile`` prints the cProfile hot spots; ``--digest`` prints a hash of every outcome (state,
changed expectations, new and pruned markers, alerts), so a change to the engine can be checked
to leave its behaviour exactly as it was.

Run: `python -m benchmarks.bench_engine --people 5000 --months 12`.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from services.common.events import AgencyEvent
from services.processor.domain.rules import (
    PersonRuleState,
    RulePack,
    apply_event,
    default_pack_path,
    load_rule_pack,
)
from services.simulation import simulate

START = datetime(2026, 1, 5, tzinfo=UTC)


Stream = Sequence[tuple[str, AgencyEvent]]


def keyed(events: Sequence[AgencyEvent]) -> Stream:
    """(person key, event) pairs: the keys are the processor's cost, not the engine's (the
    identifiers stand in for the person id the identity step would give)."""
    return [(event.identifier_key, event) for event in events]


def fold(pack: RulePack, stream: Stream,
         witness: Callable[[object], None] | None = None) -> dict[str, PersonRuleState]:
    """Every event through the engine, one state per person, as the processor does."""
    states: dict[str, PersonRuleState] = {}
    for key, event in stream:
        state = states.get(key) or PersonRuleState(key)
        outcome = apply_event(pack, state, event, event.recorded_at)
        states[key] = outcome.state
        if witness is not None:
            witness(outcome)
    return states


def timed(pack: RulePack, stream: Stream, repeats: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the best of ``repeats`` runs. CPU time is the figure
    for one core: on a busy machine the wall clock also counts time spent waiting for it."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        fold(pack, stream)
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def digest(pack: RulePack, stream: Stream) -> str:
    """A hash of every outcome in order: equal digests, equal behaviour on this stream."""
    sha = hashlib.sha256()
    fold(pack, stream, lambda outcome: sha.update(repr(outcome).encode()))
    return sha.hexdigest()


def profile(pack: RulePack, stream: Stream, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(fold, pack, stream)
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print cProfile hot spots")
    parser.add_argument("--top", type=int, default=30, help="rows of the profile to print")
    parser.add_argument("--digest", action="store_true", help="print a hash of all outcomes")
    args = parser.parse_args()

    pack = load_rule_pack(default_pack_path())
    started = time.perf_counter()
    events = simulate(args.seed, args.people, args.months, START)
    print(f"simulated {len(events):,} events for {args.people:,} people over {args.months} "
          f"months in {time.perf_counter() - started:.1f}s; {len(pack.rules)} rules")
    stream = keyed(events)
    if args.digest:
        print(f"digest {digest(pack, stream)}")
    if args.profile:
        profile(pack, stream, args.top)
        return
    cpu, wall = timed(pack, stream, args.repeats)
    print(f"apply_event: {len(events) / cpu:,.0f} events/s, {cpu / len(events) * 1e6:.1f} "
          f"µs/event of CPU time ({len(events) / wall:,.0f} events/s by the wall clock; "
          f"best of {args.repeats})")


if __name__ == "__main__":
    main()
