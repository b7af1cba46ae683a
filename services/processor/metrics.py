"""The worker's Prometheus metrics, in one registry per worker (no process-wide globals).

- the process itself: prometheus-client's default collectors (CPU, memory, open files, GC,
  Python version), registered on the worker's own registry;
- the tracked consumers (``ConsumerMetrics``: records, batch and end-to-end latency, lag,
  stalls; ``services/common/tracked_consumer.py``);
- the events the pipeline applied, by event type (a fixed vocabulary), and the copies it
  recognised;
- state read from PostgreSQL every ``metrics_refresh_seconds`` (``StateGauges``): open
  expectations by rule, alerts by rule and status, dead letters by reason code. Scrapes
  read the last values: however often Prometheus scrapes, the database is asked once per
  refresh.
Labels are event types, rule ids, statuses, reason codes, consumers, topics and partitions:
never an identifier, event id or anything a publisher wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping

import asyncpg
import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
)

from projections.queries import metrics as sql
from services.common.db import DATABASE_UNAVAILABLE
from services.processor.reason_codes import reason_code

log = structlog.get_logger("joinedup.metrics")


def worker_registry() -> CollectorRegistry:
    """A registry with the default process, platform and GC collectors on it."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter("joinedup_processor_events", "events applied to the read "
                              "models, by event type", ["event_type"], registry=registry)
        self.duplicates = Counter("joinedup_processor_duplicate_events", "copies of events "
                                  "applied before, recognised and skipped", registry=registry)

    def applied(self, event_types: Iterable[str], duplicates: int) -> None:
        for event_type, count in Tally(event_types).items():
            self.events.labels(event_type).inc(count)
        if duplicates:
            self.duplicates.inc(duplicates)


class StateGauges:
    def __init__(self, pool: asyncpg.Pool, registry: CollectorRegistry) -> None:
        self._pool = pool
        self.expectations = Gauge("joinedup_open_expectations", "expectations waiting for "
                                  "their event, by rule", ["rule"], registry=registry)
        self.alerts = Gauge("joinedup_alerts", "alerts in the read model, by rule and status",
                            ["rule", "state"], registry=registry)
        self.dead_letters = Gauge("joinedup_dead_letters", "messages parked on the "
                                  "dead-letter topic, by reason code", ["reason"],
                                  registry=registry)
        self._shown: dict[str, set[tuple[str, ...]]] = {}
        self.refreshed = Gauge("joinedup_state_metrics_refreshed_timestamp_seconds",
                               "when the gauges read from PostgreSQL were last refreshed",
                               registry=registry)

    async def keep_refreshing(self, stopping: asyncio.Event, interval: float) -> None:
        failing = False
        while not stopping.is_set():
            try:
                await self.refresh()
                failing = False
            except DATABASE_UNAVAILABLE as exc:  # the last values stay; their age shows it
                if not failing:
                    log.warning("state metrics not refreshed", error=type(exc).__name__)
                failing = True
            except Exception as exc:  # a fault in the metrics must never stop the worker
                log.error("state metrics not refreshed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    async def refresh(self) -> None:
        async with self._pool.acquire() as conn:
            expectations = await conn.fetch(sql.OPEN_EXPECTATIONS)
            alerts = await conn.fetch(sql.ALERTS)
            dead_letters = await conn.fetch(sql.DEAD_LETTERS)
        self._replace("expectations", self.expectations,
                      {(r["rule_id"],): r["n"] for r in expectations})
        self._replace("alerts", self.alerts,
                      {(r["rule_id"], r["status"]): r["n"] for r in alerts})
        codes: Tally[tuple[str, ...]] = Tally()
        for r in dead_letters:
            codes[(reason_code(r["reason"]),)] += r["n"]
        self._replace("dead_letters", self.dead_letters, codes)
        self.refreshed.set(time.time())

    def _replace(self, name: str, gauge: Gauge, values: Mapping[tuple[str, ...], int]
                 ) -> None:
        """Set every label set in ``values``; remove those no longer there (a rule with no
        open expectation left shows no series, rather than an old count)."""
        for labels in self._shown.get(name, set()) - set(values):
            gauge.remove(*labels)
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        self._shown[name] = set(values)
