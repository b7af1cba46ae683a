"""The HMPPS mapper on its own: domain-event JSON -> checked agency event, against the
gateway's own parsing of the same facts in joinedup's native JSON (the reference, measured in
the same run). No broker, no database: the mapping's cost per message.

Run: `python -m benchmarks.bench_hmpps --messages 50000`.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.common.identifiers import make_crn, make_noms_number
from services.common.serde.agency_json import event_to_json
from services.common.validation import event_problems
from services.ingest.domain.parsing import parse_event
from services.ingest.formats.hmpps.mapper import Mapped, map_event
from services.ingest.formats.hmpps.mapping import load_mapping

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "hmpps"
SAMPLES = ("prisoner-released-released", "prison-offender-events-released",
           "prisoner-released-temporary-absence", "prisoner-received", "prisoner-merged",
           "cas3-referral-submitted", "cas3-booking-confirmed", "community-manager-allocated")
SECRET = b"benchmark-secret-0123456789abcdef"


def messages(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    samples = [json.loads((FIXTURES / f"{n}.json").read_text()) for n in SAMPLES]
    out = []
    for i in range(count):
        body = json.loads(json.dumps(samples[i % len(samples)]))
        noms, crn = make_noms_number(rng), make_crn(rng)
        for item in body.get("personReference", {}).get("identifiers", []):
            if item["type"] == "NOMS" and item["value"] != "Unknown NOMS Number":
                item["value"] = noms
            elif item["type"] == "CRN":
                item["value"] = crn
        info = body.get("additionalInformation", {})
        if "nomsNumber" in info:
            info["nomsNumber"] = noms
        body["occurredAt"] = (datetime(2026, 1, 1, tzinfo=UTC)
                              + timedelta(minutes=rng.randrange(500_000))).isoformat()
        out.append(json.dumps(body).encode())
    return out


def best_of(repeats: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="messages mapped")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    mapping = load_mapping()
    raw = messages(args.messages)
    mapped = [map_event(m, "hmpps", mapping, SECRET) for m in raw]
    events = [r.event for r in mapped if isinstance(r, Mapped)]
    assert len(events) == len(raw), "every benchmark message maps"
    native = [json.dumps(event_to_json(e)).encode() for e in events]
    now, tolerance = datetime.now(UTC), timedelta(minutes=5)

    def hmpps() -> None:
        for m in raw:
            result = map_event(m, "hmpps", mapping, SECRET)
            assert isinstance(result, Mapped)
            event_problems(result.event, now, tolerance)

    def reference() -> None:
        for body in native:
            parse_event(json.loads(body), now, tolerance)

    ours, theirs = best_of(args.repeats, hmpps), best_of(args.repeats, reference)
    n = len(raw)
    print(f"hmpps map+check   {n / ours:10,.0f} msg/s  {ours / n * 1e6:7.1f} µs/msg")
    print(f"native parse ref  {n / theirs:10,.0f} msg/s  {theirs / n * 1e6:7.1f} µs/msg")
    print(f"ratio hmpps/native cost: {ours / theirs:.2f}x (CPU time, best of {args.repeats})")


if __name__ == "__main__":
    main()
