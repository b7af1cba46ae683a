"""The processor as a Faust app: one worker process runs
- admission (a task: a tracked consumer of every agency topic, see services/admission),
- the person-event intake (a task: a tracked consumer, see services/common/tracked_consumer),
- the alert projector (a Faust agent over the alerts topic),
- the deadline timer (a Faust timer that asks PostgreSQL what is due),
- /healthz, /readyz and /metrics (services/processor/entrypoints/health.py).

None of them ends the worker when a server goes away: the intake pauses and retries from its
tracked positions, the projector retries its batch, the timer skips ticks, and /readyz says
why the worker is not ready. Built by `create_app(settings)`; nothing is created at import
time. Resources that need the event loop are built when the worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import faust
import structlog
from prometheus_client import CollectorRegistry

from services.common.backoff import Backoff
from services.common.db import DATABASE_UNAVAILABLE
from services.common.health import Health
from services.common.kafka import BROKER_UNAVAILABLE
from services.common.kafka_security import faust_credentials
from services.common.records import Message
from services.common.settings import Settings
from services.processor.bootstrap import Processor, build_processor
from services.processor.entrypoints.health import serve_health
from services.processor.metrics import worker_registry

log = structlog.get_logger("joinedup.worker")


def create_app(settings: Settings) -> faust.App:
    _, bootstrap = settings.require_servers()
    # Faust makes its datadir without parents: in a fresh directory `.joinedup` is missing.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.processor_group}-faust",
        broker=f"kafka://{bootstrap}",
        # Faust's own clients (producer, consumer, admin) connect as ours do.
        broker_credentials=faust_credentials(settings),
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_partitions=settings.topic_partitions,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_ms / 1000,
        datadir=str(settings.data_dir / "faust"),
    )
    health = Health()
    health.down("processor", "starting")
    registry = worker_registry()  # with the default process collectors
    started = asyncio.Event()
    holder: dict[str, Processor] = {}

    async def processor() -> Processor:
        await started.wait()
        return holder["processor"]

    @app.task
    async def run_processor() -> None:
        runner = None
        if settings.worker_health_port:
            try:
                runner = await serve_health(health, registry, settings.worker_health_host,
                                            settings.worker_health_port)
            except OSError as exc:  # the port is taken: work on, without the endpoints
                log.error("health endpoints not served", port=settings.worker_health_port,
                          error=type(exc).__name__)
        try:
            running = await _start(settings, health, registry)
            holder["processor"] = running
            started.set()
            log.info("processor started", topic=settings.topics.person_events)
            try:
                await running.run()
            finally:
                await running.close()
        finally:
            if runner is not None:
                await runner.cleanup()

    alerts_topic = app.topic(settings.topics.alerts, key_serializer="raw", value_serializer="raw")

    @app.agent(alerts_topic)
    async def project_alerts(stream: Any) -> None:  # a faust.Stream (take_events is untyped)
        """Alert events (raised, resolved, later acknowledged...) into the alert read model."""
        running = await processor()
        async for batch in stream.take_events(500, within=0.05):
            await running.projector.project([
                Message(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                        e.message.value, int((e.message.timestamp or 0) * 1000),
                        _headers(e.message.headers))
                for e in batch])

    @app.timer(settings.timer_interval_seconds)
    async def deadlines() -> None:
        """Raise alerts for expectations now due, even when no event arrives."""
        if "processor" in holder:
            await holder["processor"].deadlines.tick_safely()

    return app


async def _start(settings: Settings, health: Health, registry: CollectorRegistry) -> Processor:
    """Build the processor, waiting (with backoff) for servers that are not there yet."""
    backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
    while True:
        try:
            running = await build_processor(settings, health=health, registry=registry)
        except (*DATABASE_UNAVAILABLE, *BROKER_UNAVAILABLE) as exc:
            delay = backoff.next()
            log.warning("servers not reachable; the processor starts when they are",
                        error=type(exc).__name__, retry_in=round(delay, 1))
            health.down("processor", f"waiting for the servers ({type(exc).__name__})")
            await asyncio.sleep(delay)
            continue
        health.up("processor")
        with contextlib.suppress(*BROKER_UNAVAILABLE, *DATABASE_UNAVAILABLE):
            await running.alerts.publish()  # whatever a previous run left in the outbox
        return running


def _headers(headers: Any) -> tuple[tuple[str, bytes], ...]:
    """Faust gives a record's headers as a list of pairs or a mapping (kept on a dead letter)."""
    if not headers:
        return ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(k), bytes(v or b"")) for k, v in pairs)
