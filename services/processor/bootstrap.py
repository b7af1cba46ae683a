"""The processor's composition root: builds the adapters and hands them to the entrypoints."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from services.common.agencies import PublisherPolicy
from services.common.db import create_pool, wait_and_migrate
from services.common.health import Health
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.common.tracked_consumer import ConsumerMetrics, TrackedConsumer
from services.processor.adapters import store
from services.processor.adapters.alerts import AlertPublisher
from services.processor.adapters.dead_letters import DeadLetterTopic
from services.processor.alert_projector import AlertProjector
from services.processor.clock import Clock, StreamClock, WallClock
from services.processor.domain.rules import RulePack, default_pack_path, load_rule_pack
from services.processor.entrypoints.intake import processor_intake
from services.processor.pipeline import BatchProcessor
from services.processor.rules_stage import DeadlineWatch, RuleStage


@dataclass
class Processor:
    """Everything a running processor holds; started and stopped as one."""

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    pack: RulePack
    dead_letters: DeadLetterTopic
    alerts: AlertPublisher
    deadlines: DeadlineWatch
    pipeline: BatchProcessor
    intake: TrackedConsumer
    projector: AlertProjector
    health: Health
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(Exception):
            await self.producer.stop()
        await self.pool.close()


def load_pack(settings: Settings) -> RulePack:
    """The rule pack, validated at start: a bad file stops the worker with line and field."""
    return load_rule_pack(settings.rule_pack or default_pack_path())


def make_clock(settings: Settings) -> Clock:
    if settings.clock == "stream":
        return StreamClock(settings.processor_group, settings.topics.agency_events)
    return WallClock()


async def build_processor(settings: Settings, *, migrate: bool = True,
                          clock: Clock | None = None, rules: bool = True,
                          health: Health | None = None,
                          registry: CollectorRegistry | None = None) -> Processor:
    pack = load_pack(settings)
    health = health or Health()
    if migrate:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
    pool = await create_pool(settings, max_size=5, init=store.prepare_connection)
    producer = make_producer(settings)
    try:
        await producer.start()
    except BaseException:
        await pool.close()
        raise
    policy = PublisherPolicy(pool) if settings.check_direct_publishers else None
    dead_letters = DeadLetterTopic(producer, settings.topics.dead_letter)
    alerts = AlertPublisher(pool, producer, settings.topics.alerts)
    stage = RuleStage(pack)
    pipeline = BatchProcessor(
        pool, dead_letters, consumer=settings.processor_group, policy=policy,
        rules=stage if rules else None,
        publish_alerts=alerts.publish if rules else None)
    intake = processor_intake(settings, pool, pipeline, stage, health,
                              ConsumerMetrics(registry))
    deadlines = DeadlineWatch(pool, stage, clock or make_clock(settings), alerts,
                              intake.caught_up_partitions,
                              timedelta(seconds=settings.deadline_grace_seconds), health)
    projector = AlertProjector(pool, dead_letters, health, settings.retry_initial_seconds,
                               settings.retry_max_seconds)
    return Processor(settings, pool, producer, pack, dead_letters, alerts, deadlines, pipeline,
                     intake, projector, health)
