"""Kafka edges shared by every service: the client factories, topic creation.

Every producer, consumer, admin and bare client of the project is built here (a unit test
checks that nothing else constructs one), so each gets the settings' TLS and SASL options
(services/common/kafka_security.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from services.common.kafka_security import client_security
from services.common.settings import Settings


def _bootstrap(settings: Settings) -> str:
    """The cluster's address (a Kafka client needs no database)."""
    if not settings.kafka_bootstrap:
        raise RuntimeError("no Kafka broker configured: run `joinedup up` or set "
                           "KAFKA_BOOTSTRAP_SERVERS")
    return settings.kafka_bootstrap


def make_consumer(settings: Settings, *topics: str, **options: object) -> AIOKafkaConsumer:
    """A consumer of the settings' cluster, connecting as the settings say."""
    bootstrap = _bootstrap(settings)
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap,
                            **{**options, **client_security(settings)})  # type: ignore[arg-type]


async def stop_consumer(consumer: AIOKafkaConsumer, nudge_every: float = 1.0) -> None:
    """``consumer.stop()``, made to finish. Stop every consumer of the project with this.

    aiokafka's ``Fetcher.close()`` cancels its fetch task and waits for it. When the
    assignment has just changed (``assign()``, a rebalance), that task is cancelling the
    fetches it had in flight and awaiting each of them under
    ``contextlib.suppress(CancelledError)``, which swallows the cancel meant for the task
    itself: it carries on fetching and ``stop()`` waits forever (aiokafka 0.10 to 0.14; on
    the local broker every time a consumer is stopped right after an ``assign()``, as the
    log readers of ``joinedup replay`` and ``what-if`` did, hanging a CI run). The fetch task
    is cancelled again until ``stop()`` returns; a cancel that lands in its main wait ends
    it (tests/integration/test_consumer_stop.py)."""
    stopping = asyncio.ensure_future(consumer.stop())
    try:
        while not (await asyncio.wait({stopping}, timeout=nudge_every))[0]:
            _cancel_fetching(consumer)
    except asyncio.CancelledError:
        _cancel_fetching(consumer)  # the stop goes on without us: give it its best chance
        raise
    stopping.result()


def _cancel_fetching(consumer: AIOKafkaConsumer) -> None:
    fetcher = getattr(consumer, "_fetcher", None)  # private: see stop_consumer
    task = getattr(fetcher, "_fetch_task", None)
    if isinstance(task, asyncio.Task) and not task.done():
        task.cancel()


def make_admin(settings: Settings, **options: object) -> AIOKafkaAdminClient:
    bootstrap = _bootstrap(settings)
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                               **{**options, **client_security(settings)})  # type: ignore[arg-type]


def make_client(settings: Settings, **options: object) -> AIOKafkaClient:
    """A bare client (metadata and raw requests)."""
    bootstrap = _bootstrap(settings)
    return AIOKafkaClient(bootstrap_servers=bootstrap,
                          **{**options, **client_security(settings)})  # type: ignore[arg-type]


async def ensure_topics(settings: Settings, topics: tuple[str, ...] | None = None,
                        agencies: Iterable[str] = ()) -> None:
    """Create the topics if they are missing (by default the fixed ones), and the topic of
    each agency in `agencies`. Event topics keep everything (retention -1).

    Create a topic before anything writes to it: Tansu acknowledges writes to a topic that
    does not exist and keeps none of them, and a topic it auto-created on a metadata request
    breaks when it is then created explicitly."""
    topics = (*(topics or settings.topics.all()), *(settings.topics.agency(a) for a in agencies))
    admin = make_admin(settings)
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


@functools.lru_cache(maxsize=1 << 17)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def key_partitioner(key: bytes | None, all_partitions: Sequence[int],
                    available: Sequence[int]) -> int:
    """Kafka's default partitioning (the murmur2 of the key, as the Java client and every
    other producer compute it), each key's hash memoised: aiokafka's murmur2 is pure Python
    (8.5 µs a message) and a person's key comes again with each of their events."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


def make_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """A producer that only reports success once every in-sync replica has the write."""
    bootstrap = _bootstrap(settings)
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "partitioner": key_partitioner,
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotence,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    options.update(client_security(settings))
    return AIOKafkaProducer(**options)  # type: ignore[arg-type]


#: The broker is unreachable or not answering in time: retry later.
BROKER_UNAVAILABLE: tuple[type[BaseException], ...] = (KafkaError, OSError, TimeoutError)


class TopicMissing(KafkaError):
    """The broker does not list a topic we are about to write to (retry once it does)."""


class TopicGuard:
    """Writes only to topics the broker lists, asked at most every `max_age` seconds.

    Tansu on memory storage comes back from a restart with no topics, yet acknowledges writes
    to them from clients that knew them before: the records go to a ghost no new client sees,
    and once the topic is created again, writes acknowledged after that were lost as well (22
    of 171 in a reproduction). So nothing is written to a topic until the broker lists it;
    the writer fails (one of BROKER_UNAVAILABLE) and retries later, as for a broker that is
    down. On Apache Kafka it costs one metadata request per `max_age` at most."""

    def __init__(self, producer: AIOKafkaProducer, max_age: float = 0.25) -> None:
        self._producer = producer
        self._max_age = max_age
        self._listed: set[str] = set()
        self._listed_at = float("-inf")
        self._lock = asyncio.Lock()

    async def require(self, topics: Iterable[str]) -> None:
        wanted = set(topics)
        if wanted <= self._listed and self._fresh():
            return
        async with self._lock:
            if not (wanted <= self._listed and self._fresh()):
                cluster = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 5.0)
                self._listed = set(cluster.topics())
                self._listed_at = asyncio.get_running_loop().time()
        missing = wanted - self._listed
        if missing:
            raise TopicMissing(f"{len(missing)} topic(s) not on the broker")

    def _fresh(self) -> bool:
        return asyncio.get_running_loop().time() - self._listed_at < self._max_age
