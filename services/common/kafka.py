"""Kafka edges shared by every service: topic creation and producers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from services.common.settings import Settings


async def ensure_topics(settings: Settings, topics: tuple[str, ...] | None = None,
                        agencies: Iterable[str] = ()) -> None:
    """Create the topics if they are missing (by default the fixed ones), and the topic of
    each agency in `agencies`. Event topics keep everything (retention -1).

    Create a topic before anything writes to it: Tansu acknowledges writes to a topic that
    does not exist and keeps none of them, and a topic it auto-created on a metadata request
    breaks when it is then created explicitly."""
    _, bootstrap = settings.require_servers()
    topics = (*(topics or settings.topics.all()), *(settings.topics.agency(a) for a in agencies))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.topic_partitions, settings.topic_replication,
                     topic_configs={"retention.ms": "-1"} if settings.topic_replication > 1 else {})
            for name in dict.fromkeys(topics) if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def make_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """A producer that only reports success once every in-sync replica has the write."""
    _, bootstrap = settings.require_servers()
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotence,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)  # type: ignore[arg-type]


#: The broker is unreachable or not answering in time: retry later.
BROKER_UNAVAILABLE: tuple[type[BaseException], ...] = (KafkaError, OSError, TimeoutError)
