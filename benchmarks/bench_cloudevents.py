"""What reading a CloudEvent costs the gateway, per event, next to a native JSON event
(the reference, measured in the same run), and what the CloudEvents Kafka binding headers
add to building a record's headers.

In process, no servers: the parsing is pure, so this isolates it from HTTP and the broker.
  1. native JSON (``parse_event``): the reference;
  2. structured mode (``parse_cloudevent``) with three extension attributes;
  3. binary mode: the ``ce-*`` headers read by the SDK's HTTP binding, then (2);
  4. a record's headers with the binding (``agency_event_headers``) next to the
     content-type and ce_type pair written before.
Run: ``python benchmarks/bench_cloudevents.py [--events 20000]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.serde.agency_json import event_to_json
from services.common.serde.headers import CONTENT_TYPE, EVENT_TYPE, agency_event_headers
from services.ingest.domain.parsing import parse_cloudevent, parse_event
from services.ingest.entrypoints.binary_mode import parse_binary, structured
from tests.factories import contact

TOLERANCE = timedelta(minutes=5)
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def per_event(action: Callable[[], Any], n: int) -> float:
    """Microseconds per call, the best of three rounds (the machine is shared)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(n):
            action()
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="calls per round")
    n = parser.parse_args().events
    event, now = contact("attended"), datetime.now(UTC)
    native = event_to_json(event)
    data = {"recorded_at": native["recorded_at"], "identifiers": native["identifiers"],
            "payload": native["payload"],
            "source": {k: v for k, v in native["source"].items() if k != "agency"}}
    attributes = {"specversion": "1.0", "id": event.event_id, "source": "/agencies/hmp-leeds",
                  "type": event.event_type, "time": native["occurred_at"]}
    extensions = {"dataref": "https://hmp-leeds.example/e/1", "traceparent": TRACE,
                  "filtering": {"subscriptionId": "s-1"}}
    cloudevent = {**attributes, **extensions, "data": data}
    headers = {f"ce-{k}": v for k, v in {**attributes, **extensions}.items()
               if isinstance(v, str)}
    reference = per_event(lambda: parse_event(native, now, TOLERANCE), n)
    rows = [
        ("native JSON (reference)", reference),
        ("structured mode, 3 extensions", per_event(
            lambda: parse_cloudevent(cloudevent, now, TOLERANCE), n)),
        ("binary mode, 2 extensions", per_event(lambda: parse_binary(
            structured(headers, "application/json", data), now, TOLERANCE), n)),
    ]
    before = per_event(lambda: [(CONTENT_TYPE, b"x"), (EVENT_TYPE, event.event_type.encode())],
                       n)
    after = per_event(lambda: agency_event_headers(event, TRACE), n)
    for name, micros in rows:
        print(f"parse {name:32} {micros:8.1f} µs/event  ratio {micros / reference:5.2f}")
    print(f"record headers: two {before:6.2f} µs, with the CloudEvents binding {after:6.2f} µs "
          f"(+{after - before:.2f} µs/record, {after / reference:.3f} of a native parse)")


if __name__ == "__main__":
    main()
