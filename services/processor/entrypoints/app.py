"""The processor as a Faust app: one worker process runs
- the agency-event intake (a task: batch consumer with the tracking-row pattern),
- the alert projector (a Faust agent over the alerts topic),
- the deadline timer (a Faust timer that asks PostgreSQL what is due).

Built by `create_app(settings)`; nothing is created at import time. Resources that need the
event loop are built when the worker starts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import structlog

from services.common.alerts import decode_alert_event
from services.common.codec import DecodeError
from services.common.settings import Settings
from services.processor.adapters.alerts import project_alert_events
from services.processor.adapters.dead_letters import Rejected
from services.processor.adapters.store import Parked
from services.processor.bootstrap import Processor, build_processor

log = structlog.get_logger("joinedup.worker")


def create_app(settings: Settings) -> faust.App:
    _, bootstrap = settings.require_servers()
    app = faust.App(
        f"{settings.processor_group}-faust",
        broker=f"kafka://{bootstrap}",
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
    started: asyncio.Event | None = None
    holder: dict[str, Processor] = {}

    async def processor() -> Processor:
        nonlocal started
        if started is None:
            started = asyncio.Event()
        await started.wait()
        return holder["processor"]

    @app.task
    async def intake() -> None:
        nonlocal started
        holder["processor"] = running = await build_processor(settings)
        if started is None:
            started = asyncio.Event()
        started.set()
        log.info("processor started", topic=settings.topics.agency_events)
        try:
            await running.alerts.publish()  # whatever a previous run left in the outbox
            await running.intake.run(running.stopping)
        finally:
            await running.close()

    alerts_topic = app.topic(settings.topics.alerts, key_serializer="raw", value_serializer="raw")

    @app.agent(alerts_topic)
    async def project_alerts(stream: Any) -> None:  # a faust.Stream (take_events is untyped)
        """Alert events (raised, resolved, later acknowledged...) into the alert read model."""
        running = await processor()
        async for batch in stream.take_events(500, within=0.05):
            events, rejected = [], []
            for item in batch:
                message = item.message
                try:
                    events.append(decode_alert_event(message.value or b""))
                except DecodeError as exc:  # parked like any bad message, never dropped
                    parked = Parked(message.topic, message.partition, message.offset,
                                    f"undecodable alert event: {exc}")
                    rejected.append(Rejected(parked, message.key, message.value))
            await running.dead_letters.park(rejected)
            async with running.pool.acquire() as conn:
                await project_alert_events(conn, events)

    @app.timer(settings.timer_interval_seconds)
    async def deadlines() -> None:
        """Raise alerts for expectations now due, even when no event arrives."""
        if "processor" in holder:
            await holder["processor"].deadlines.tick()

    return app
