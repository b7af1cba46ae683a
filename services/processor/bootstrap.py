"""The processor's composition root: builds the adapters and hands them to the entrypoints."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer

from services.common.agencies import PublisherPolicy
from services.common.db import create_pool, wait_and_migrate
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import Settings
from services.processor.adapters.dead_letters import DeadLetterTopic
from services.processor.entrypoints.intake import Intake
from services.processor.pipeline import BatchProcessor


@dataclass
class Processor:
    """Everything a running processor holds; started and stopped as one."""

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    pipeline: BatchProcessor
    intake: Intake
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        self.stopping.set()
        await self.producer.stop()
        await self.pool.close()


async def build_processor(settings: Settings, *, migrate: bool = True) -> Processor:
    if migrate:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
    pool = await create_pool(settings, max_size=5)
    producer = make_producer(settings)
    await producer.start()
    policy = PublisherPolicy(pool) if settings.check_direct_publishers else None
    pipeline = BatchProcessor(
        pool, DeadLetterTopic(producer, settings.topics.dead_letter),
        consumer=settings.processor_group, policy=policy)
    return Processor(settings, pool, producer, pipeline, Intake(settings, pool, pipeline))
