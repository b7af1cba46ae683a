"""Admission's composition root: a tracked consumer of every agency topic (a pattern, so a
newly registered agency's topic is picked up without a restart)."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer

from services.admission.handler import Admission
from services.admission.transit import TransitKeys
from services.common.agencies import PublisherPolicy
from services.common.dead_letters import DeadLetterTopic
from services.common.health import Health
from services.common.kafka import TopicGuard
from services.common.settings import Settings
from services.common.tracked_consumer import ConsumerMetrics, TrackedConsumer
from services.identity.index_store import IndexStore
from services.identity.key_ring import KeyRing


def build_admission(settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer,
                    dead_letters: DeadLetterTopic, health: Health, metrics: ConsumerMetrics,
                    guard: TopicGuard | None = None) -> TrackedConsumer:
    key_ring = KeyRing(settings.key_encryption_key())
    admission = Admission(pool, producer, settings.topics, dead_letters, PublisherPolicy(pool),
                          name=settings.admission_group, identity=IndexStore(key_ring),
                          transit=TransitKeys(pool, settings.key_encryption_key()),
                          guard=guard)
    return TrackedConsumer(
        settings, pool, admission, name=settings.admission_group,
        group=settings.admission_group, pattern=settings.topics.agency_pattern, health=health,
        metrics=metrics, reset_policy=settings.on_log_reset)
