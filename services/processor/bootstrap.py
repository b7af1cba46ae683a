"""The processor's composition root: builds the adapters and hands them to the entrypoints."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from services.admission.bootstrap import build_admission
from services.alerts.outbox import AlertPublisher
from services.alerts.projector import AlertProjector
from services.alerts.read_model import LiveDelivery
from services.common.backoff import Backoff
from services.common.db import create_pool, wait_and_migrate
from services.common.dead_letters import DeadLetterTopic
from services.common.health import Health
from services.common.kafka import TopicGuard, ensure_topics, make_producer
from services.common.records import Message
from services.common.settings import Settings
from services.common.tracked_consumer import ConsumerMetrics, TrackedConsumer
from services.identity.key_ring import KeyRing
from services.processor.adapters import read_model_positions, store
from services.processor.catch_up import CatchUp
from services.processor.clock import Clock, StreamClock, WallClock
from services.processor.domain.rules import RulePack, default_pack_path, load_rule_pack
from services.processor.entrypoints.intake import processor_intake
from services.processor.metrics import PipelineMetrics, StateGauges
from services.processor.opening import Opener
from services.processor.pipeline import BatchProcessor, Forward
from services.processor.read_models import Registry, read_models
from services.processor.rules_stage import DeadlineWatch, RuleStage
from services.processor.upstream import AdmissionBacklog


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
    admission: TrackedConsumer
    projector: AlertProjector
    health: Health
    catching_up: CatchUp
    upstream: AdmissionBacklog
    gauges: StateGauges | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Admission and the intake until `stopping` is set, and beside them any read model
        new to this database catching up from the archive, and the gauges read from
        PostgreSQL kept fresh."""
        backoff = Backoff(self.settings.retry_initial_seconds, self.settings.retry_max_seconds)
        refreshing = ([self.gauges.keep_refreshing(self.stopping,
                                                   self.settings.metrics_refresh_seconds)]
                      if self.gauges is not None else [])
        await asyncio.gather(self.admission.run(self.stopping), self.intake.run(self.stopping),
                             self.catching_up.keep_running(self.stopping, backoff,
                                                           self.health), *refreshing)

    async def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(Exception):
            await self.producer.stop()
        with contextlib.suppress(Exception):
            await self.upstream.close()
        await self.pool.close()


def _caught_up(intake: TrackedConsumer, admission: TrackedConsumer) -> Callable[[], list[int]]:
    """The person-event partitions whose deadlines may fire: caught up here, and nothing
    waiting upstream in this worker's admission (events it has yet to forward could meet a
    deadline). Other workers' admission is asked of the group's tracking rows by the timer
    itself (``upstream.py``)."""
    def partitions() -> list[int]:
        return intake.caught_up_partitions() if admission.caught_up_everywhere() else []
    return partitions


#: the header on a person event the processor put back under another person id
REKEYED = "joinedup-rekeyed-from-partition"


def forwarder(producer: AIOKafkaProducer, topic: str, guard: TopicGuard) -> Forward:
    """Puts person events back on their topic under the person id they resolve to now."""
    async def forward(messages: Sequence[tuple[Message, str]]) -> None:
        await guard.require([topic])
        sends = [await producer.send(topic, m.value, key=person.encode(), headers=[
            *m.headers, (REKEYED, str(m.partition).encode())]) for m, person in messages]
        await asyncio.gather(*sends)
    return forward


def load_pack(settings: Settings) -> RulePack:
    """The rule pack, validated at start: a bad file stops the worker with line and field."""
    return load_rule_pack(settings.rule_pack or default_pack_path())


def make_clock(settings: Settings) -> Clock:
    if settings.clock == "stream":
        return StreamClock(settings.processor_group, settings.topics.person_events)
    return WallClock()


async def build_processor(settings: Settings, *, migrate: bool = True,
                          clock: Clock | None = None, rules: bool = True,
                          health: Health | None = None,
                          registry: CollectorRegistry | None = None,
                          models: Callable[[RuleStage | None], Registry] | None = None
                          ) -> Processor:
    pack = load_pack(settings)
    health = health or Health()
    if migrate:
        await wait_and_migrate(settings)
        await ensure_topics(settings)
    # A statement stuck longer than this (a table locked by someone else) is cancelled: the
    # batch is retried with backoff and the worker says it is not ready, instead of hanging.
    pool = await create_pool(settings, max_size=5, init=store.prepare_connection,
                             server_settings={"statement_timeout":
                                              str(settings.db_statement_timeout_ms)})
    producer = make_producer(settings)
    try:
        await producer.start()
    except BaseException:
        await pool.close()
        raise
    guard = TopicGuard(producer)  # nothing written to a topic the broker does not list
    dead_letters = DeadLetterTopic(producer, settings.topics.dead_letter, guard)
    alerts = AlertPublisher(pool, producer, settings.topics.alerts, guard)
    stage = RuleStage(pack, delivery=LiveDelivery.from_settings(settings))
    kept = (models or read_models)(stage if rules else None)
    try:  # a read model new to this database is registered before the first batch
        await read_model_positions.register(pool, kept.names)
    except BaseException:
        await producer.stop()
        await pool.close()
        raise
    opener = Opener(KeyRing(settings.key_encryption_key()))
    registry = registry or CollectorRegistry()
    pipeline = BatchProcessor(
        pool, dead_letters, consumer=settings.processor_group, read_models=kept,
        forward=forwarder(producer, settings.topics.person_events, guard), opener=opener,
        publish_alerts=alerts.publish if rules else None, metrics=PipelineMetrics(registry))
    catching_up = CatchUp(pool, kept, settings.processor_group,
                          settings.topics.person_events, opener=opener)
    metrics = ConsumerMetrics(registry)
    intake = processor_intake(settings, pool, pipeline, stage, health, metrics)
    admission = build_admission(settings, pool, producer, dead_letters, health, metrics, guard)
    upstream = AdmissionBacklog(settings, pool, every=settings.timer_interval_seconds)
    deadlines = DeadlineWatch(pool, stage, clock or make_clock(settings), alerts,
                              _caught_up(intake, admission), upstream=upstream.clear,
                              topic=settings.topics.person_events,
                              grace=timedelta(seconds=settings.deadline_grace_seconds),
                              health=health)
    projector = AlertProjector(pool, dead_letters, health, settings.retry_initial_seconds,
                               settings.retry_max_seconds, stage.delivery)
    return Processor(settings, pool, producer, pack, dead_letters, alerts, deadlines, pipeline,
                     intake, admission, projector, health, catching_up, upstream,
                     gauges=StateGauges(pool, registry))
