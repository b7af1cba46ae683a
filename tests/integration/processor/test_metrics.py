"""The worker's /metrics on the real servers: the default process collectors, events by type,
batch and end-to-end latency, lag, open expectations, alerts by rule and state, dead letters
by reason code; no personal data in any label; and the Prometheus alert rules and the
Grafana dashboard in deploy/ name only metrics a worker (or a rebuild) really exports."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from services.alerts.codec import decode_alert_event
from services.alerts.read_model import project_alert_events
from services.common.kafka import stop_consumer
from services.common.settings import Settings
from services.operations.rebuild_progress import RebuildProgress
from services.processor.bootstrap import Processor, build_processor
from services.processor.clock import ManualClock
from services.processor.entrypoints.health import serve_health
from services.processor.metrics import worker_registry
from tests import factories as f
from tests.conftest import Servers, make_settings
from tests.integration.processor.conftest import (
    publish,
    publish_raw,
    register_sources,
    wait_for,
)

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(servers: Servers) -> Settings:
    return make_settings(servers, watchdog_interval_seconds=0.2, metrics_refresh_seconds=0.2)


@dataclass
class Worker:
    processor: Processor
    clock: ManualClock
    url: str

    async def scrape(self) -> tuple[str, Samples]:
        async with aiohttp.ClientSession() as session, session.get(self.url) as response:
            assert response.status == 200
            text = await response.text()
        return text, {(s.name, frozenset(s.labels.items())): s.value
                      for family in text_string_to_metric_families(text)
                      for s in family.samples}

    async def until(self, name: str, labels: dict[str, str], value: float) -> Samples:
        """Scrape until the sample has the value (the gauges refresh on a cadence)."""
        key = (name, frozenset(labels.items()))
        samples: Samples = {}
        for _ in range(200):
            _, samples = await self.scrape()
            if samples.get(key) == value:
                return samples
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name}{labels} never reached {value}: {samples.get(key)}")


@pytest.fixture
async def worker(migrated: Settings) -> AsyncIterator[Worker]:
    """A processor on a test clock, its /metrics served, and the alert projection."""
    registry = worker_registry()
    clock = ManualClock(f.T0)
    processor = await build_processor(migrated, migrate=False, clock=clock, registry=registry)
    await register_sources(processor.pool, [(s.agency, s.service_kind)
                                            for s in f.SOURCES.values()])
    runner = await serve_health(processor.health, registry, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    running = asyncio.create_task(processor.run())
    projecting = asyncio.create_task(_project(processor))
    try:
        yield Worker(processor, clock, f"http://127.0.0.1:{port}/metrics")
    finally:
        processor.stopping.set()
        projecting.cancel()
        await asyncio.wait_for(running, 30)
        await processor.close()
        await runner.cleanup()


async def _project(processor: Processor) -> None:
    """What the worker's Faust agent does: alert events into the alert read model."""
    consumer = AIOKafkaConsumer(
        processor.settings.topics.alerts, bootstrap_servers=processor.settings.kafka_bootstrap,
        group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while True:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                async with processor.pool.acquire() as conn:
                    await project_alert_events(conn, [decode_alert_event(r.value)
                                                      for r in records])
    finally:
        await stop_consumer(consumer)


async def test_the_worker_exports_what_it_did(worker: Worker) -> None:
    processor, settings = worker.processor, worker.processor.settings
    discharge = f.transition("occurred", "MENTAL_HEALTH_DISCHARGE", source="MENTAL_HEALTH")
    referral = f.referral("made", source="PRISON", nhs="9434765870")
    await publish(settings, [discharge, referral])
    await publish_raw(settings, [(None, b"not avro at all")])
    await wait_for(processor.pool, "SELECT count(*) FROM dead_letter", 1)
    await wait_for(processor.pool,
                   "SELECT count(*) FROM expectation WHERE rule_id = 'mh-72h-follow-up'"
                   " AND status = 'open'", 1)

    samples = await worker.until("joinedup_open_expectations", {"rule": "mh-72h-follow-up"}, 1)
    assert samples[("joinedup_processor_events_total",
                    frozenset({("event_type", "transition.occurred")}))] == 1
    assert samples[("joinedup_processor_events_total",
                    frozenset({("event_type", "referral.made")}))] == 1
    assert samples[("joinedup_dead_letters", frozenset({("reason", "undecodable")}))] == 1
    intake = frozenset({("consumer", settings.processor_group)})
    assert samples[("joinedup_consumer_end_to_end_seconds_count", intake)] == 2
    assert samples[("joinedup_consumer_batch_seconds_count",
                    intake | {("stage", "apply")})] >= 1
    # the default process collectors
    assert ("process_cpu_seconds_total", frozenset()) in samples
    assert any(name == "python_info" for name, _ in samples)

    # The deadline passes: the alert is raised, and its expectation no longer open.
    worker.clock.advance(timedelta(hours=73))
    while await processor.deadlines.tick():
        pass
    samples = await worker.until("joinedup_alerts",
                                 {"rule": "mh-72h-follow-up", "state": "open"}, 1)
    assert not any(name == "joinedup_open_expectations" and ("rule", "mh-72h-follow-up") in
                   labels for name, labels in samples)

    # Lag of the intake: measured by its watchdog, nothing left to apply.
    for partition in range(settings.topic_partitions):
        await worker.until("joinedup_consumer_lag", {
            "consumer": settings.processor_group, "topic": settings.topics.person_events,
            "partition": str(partition)}, 0)
    assert samples[("joinedup_consumer_stalled_partitions", intake)] == 0

    text, _ = await worker.scrape()
    for value in (f.NHS, "9434765870", discharge.event_id, referral.event_id):
        assert value not in text


def expressions() -> list[str]:
    """Every PromQL expression of the alert rules and of the dashboard's panels."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    found = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "joinedup.json").read_text())
    found += [target["expr"] for panel in dashboard["panels"]
              for target in panel.get("targets", ())]
    assert len(found) >= 10
    return found


_METRIC = re.compile(r"\b(joinedup_[a-z_]+|process_[a-z_]+|python_[a-z_]+|up)\b")
_SERIES_SUFFIXES = ("", "_bucket", "_count", "_sum", "_total")


async def test_alert_rules_and_dashboard_name_only_exported_metrics(worker: Worker) -> None:
    await publish(worker.processor.settings, [f.contact("attended")])
    await worker.until("joinedup_processor_events_total", {"event_type": "contact.attended"}, 1)
    text, _ = await worker.scrape()
    # every family the worker declares (a labelled one may have no series yet), and those
    # a rebuild serves
    families = [family.name for family in text_string_to_metric_families(text)]
    families += [family.name for family in RebuildProgress(["timeline"], _nothing_yet)
                 .registry.collect()]
    exported = {name + suffix for name in families for suffix in _SERIES_SUFFIXES} | {"up"}
    named = {m for expr in expressions() for m in _METRIC.findall(expr)}
    missing = named - exported
    assert not missing, f"named in deploy/ but not exported: {sorted(missing)}"
    assert "joinedup_consumer_lag" in named and "joinedup_consumer_stalled_partitions" in named


async def _nothing_yet(names: object) -> tuple[int, int]:
    return 0, 0
