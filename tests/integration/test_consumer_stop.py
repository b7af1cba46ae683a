"""A consumer stopped right after its assignment changed stops (services/common/kafka.py).

aiokafka's fetch task swallows the cancel ``stop()`` sends it while it is cancelling the
fetches of the assignment just replaced, and ``stop()`` then waits forever: the log readers
of ``joinedup replay`` and ``what-if`` (one partition after another) hung a CI run that way.
``stop_consumer`` cancels the fetch task again until it ends. The first test keeps the
library's behaviour in view: when it fails, aiokafka no longer swallows the cancel and the
nudge can go. The waits here are ``asyncio.wait`` with a timeout, not ``wait_for``: a
``wait_for`` on a task that swallows its cancel never returns either."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.kafka import make_consumer, stop_consumer
from services.common.settings import Settings

pytestmark = pytest.mark.integration


async def _fetching_then_reassigned(settings: Settings) -> AIOKafkaConsumer:
    """A consumer with a fetch in flight on partition 0 (an empty topic: the broker holds
    the fetch for its wait), then assigned partition 1 instead."""
    topic = settings.topics.person_events
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=500)
    await consumer.start()
    first = TopicPartition(topic, 0)
    consumer.assign([first])
    consumer.seek(first, 0)
    await consumer.getmany(timeout_ms=50)
    consumer.assign([TopicPartition(topic, 1)])
    return consumer


async def test_aiokafka_alone_never_stops_a_consumer_whose_assignment_just_changed(
        migrated: Settings) -> None:
    consumer = await _fetching_then_reassigned(migrated)
    stopping = asyncio.ensure_future(consumer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=3)
    assert not done, "aiokafka's stop() finished: the nudge in stop_consumer may be removed"
    consumer._fetcher._fetch_task.cancel()  # what stop_consumer does: the second cancel ends it
    await asyncio.wait({stopping}, timeout=5)
    assert stopping.done() and stopping.exception() is None


async def test_stop_consumer_stops_it_every_time(migrated: Settings) -> None:
    for _ in range(10):
        consumer = await _fetching_then_reassigned(migrated)
        stopping = asyncio.ensure_future(stop_consumer(consumer, nudge_every=0.2))
        done, _ = await asyncio.wait({stopping}, timeout=30)
        assert done, "stop_consumer did not stop a consumer in 30 s"
        stopping.result()
