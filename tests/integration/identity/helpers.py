"""Driving the person index and reading what the read models hold, for the identity tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.common.events import AgencyEvent, Identifier
from services.common.kafka import make_producer
from services.identity import operator
from services.identity.codec import IdentityEvent
from services.identity.key_ring import KeyRing
from services.processor.bootstrap import Processor


async def person_of(pool: asyncpg.Pool, identifier: Identifier) -> str | None:
    return await pool.fetchval(
        "SELECT person_id::text FROM person_index_identifier WHERE scheme = $1 AND value = $2",
        identifier.scheme, identifier.value)


async def as_operator(processor: Processor, decision: operator.Decision,
                      reason: str = "checked with both services") -> list[IdentityEvent]:
    settings = processor.settings
    producer = make_producer(settings)
    await producer.start()
    try:
        return await operator.decide(processor.pool, producer, settings.topics.person_events,
                                     decision, "duty manager (test)", reason,
                                     KeyRing(settings.key_encryption_key()))
    finally:
        await producer.stop()


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60.0,
                what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def timeline_ids(pool: asyncpg.Pool, person: str | None) -> list[str]:
    return [r["event_id"] for r in await pool.fetch(
        "SELECT event_id::text FROM timeline_entry WHERE person_key = $1 "
        "ORDER BY occurred_at, recorded_at, event_id", person)]


async def alert_of(pool: asyncpg.Pool, rule: str, trigger: AgencyEvent
                   ) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT alert_id::text, person_key, status, resolution FROM alert "
        "WHERE rule_id = $1 AND trigger_event_id = $2::uuid", rule, trigger.event_id)


async def history_of(pool: asyncpg.Pool, alert_id: str) -> list[str]:
    return [r["action"] for r in await pool.fetch(
        "SELECT action FROM alert_history WHERE alert_id = $1::uuid ORDER BY at, action",
        alert_id)]


async def settled(processor: Processor, archived: int) -> None:
    """Everything published is archived, every partition caught up, and what the deadline
    timer would fire, fired."""
    pool = processor.pool
    await until(lambda: _count_at_least(pool, archived), what=f"{archived} archived events")
    await until(lambda: _caught_up(processor), what="every partition caught up")
    while await processor.deadlines.tick():
        pass


async def _count_at_least(pool: asyncpg.Pool, n: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM event_archive") >= n)


async def _caught_up(processor: Processor) -> bool:
    partitions = processor.settings.topic_partitions
    return (len(processor.intake.caught_up_partitions()) == partitions
            and processor.admission.caught_up_everywhere())
