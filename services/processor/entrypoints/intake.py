"""The agency-event intake: the processor's tracked consumer of the person-events topic.

Why not a Faust stream here: on this machine a Faust agent iterated about 4,300 events/s
(stream.take included) while aiokafka's getmany() read about 200,000/s, and the tracking-row
pattern needs the consumer to start from the position PostgreSQL holds, which Faust's offset
management does not offer. So the Faust worker runs this consumer as one of its tasks; Faust
agents handle the low-volume alert stream. See docs/architecture.md and
services/common/tracked_consumer.py for what it guarantees under faults.
"""

from __future__ import annotations

import asyncpg

from services.common.health import Health
from services.common.settings import Settings
from services.common.tracked_consumer import ConsumerMetrics, TrackedConsumer
from services.processor.pipeline import BatchProcessor
from services.processor.rules_stage import RuleStage


def processor_intake(settings: Settings, pool: asyncpg.Pool, pipeline: BatchProcessor,
                     stage: RuleStage, health: Health, metrics: ConsumerMetrics
                     ) -> TrackedConsumer:
    return TrackedConsumer(
        settings, pool, pipeline, name=settings.processor_group, group=settings.processor_group,
        topics=[settings.topics.person_events], on_revoke=stage.drop_cached, health=health,
        metrics=metrics, reset_policy=settings.on_log_reset)
