"""A running processor (intake loop in this test's event loop) against the real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from services.common.agencies import register_agency
from services.common.event_log import EventLog
from services.common.events import AgencyEvent
from services.common.kafka import ensure_topics, make_producer, stop_consumer
from services.common.settings import Settings
from services.processor.bootstrap import Processor, build_processor
from tests.factories import SOURCES


async def register_sources(pool: asyncpg.Pool, agencies: Iterable[tuple[str, str]]) -> None:
    for agency_id, service_kind in agencies:
        await register_agency(pool, agency_id, agency_id, service_kind)


@pytest.fixture
async def running(migrated: Settings) -> AsyncIterator[Processor]:
    processor = await build_processor(migrated, migrate=False)
    await register_sources(processor.pool, [(s.agency, s.service_kind) for s in SOURCES.values()])
    task = asyncio.create_task(processor.run())
    try:
        yield processor
    finally:
        processor.stopping.set()
        await asyncio.wait_for(task, 30)
        await processor.close()


async def publish(settings: Settings, events: Sequence[AgencyEvent]) -> None:
    """As direct publishers do: each event onto its agency's own topic, keyed by person."""
    await ensure_topics(settings, agencies={e.source.agency for e in events})
    producer = make_producer(settings)
    await producer.start()
    try:
        log = EventLog(producer, settings.topics, settings.subject_keys())
        sends = [await log.send(e) for e in events]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def publish_raw(settings: Settings, messages: Sequence[tuple[bytes | None, bytes]],
                      agency: str = SOURCES["PRISON"].agency) -> None:
    """Bytes as they are, onto an agency's topic (default: the PRISON source's)."""
    await ensure_topics(settings, agencies=[agency])
    producer = make_producer(settings)
    await producer.start()
    try:
        for key, value in messages:
            await (await producer.send(settings.topics.agency(agency), value, key=key))
    finally:
        await producer.stop()


async def wait_for(pool: asyncpg.Pool, query: str, expected: int, timeout: float = 60.0) -> int:
    """Poll a count query until it reaches `expected` (the processor is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = -1
    while asyncio.get_running_loop().time() < deadline:
        value = await pool.fetchval(query)
        if value >= expected:
            return int(value)
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out: {query!r} reached {value}, expected {expected}")


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await stop_consumer(consumer)
