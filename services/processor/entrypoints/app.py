"""The processor as a Faust app: the intake loop, and (with the rule pack) the deadline timer
and the alert projector, in one worker process.

Built by `create_app(settings)`; nothing is created at import time. Resources that need the
event loop are built when the worker starts.
"""

from __future__ import annotations

import faust
import structlog

from services.common.settings import Settings
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
    holder: dict[str, Processor] = {}

    @app.task
    async def intake() -> None:
        processor = await build_processor(settings)
        holder["processor"] = processor
        log.info("processor started", topic=settings.topics.agency_events,
                 group=settings.processor_group)
        try:
            await processor.intake.run(processor.stopping)
        finally:
            await processor.close()

    return app
