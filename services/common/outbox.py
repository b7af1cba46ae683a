"""Publishing a transactional outbox: rows written in the transaction that decided them,
sent to their topic after it commits, and removed once the broker acknowledged them.

A process that dies in between leaves rows behind and the next drain publishes them:
duplicates are possible (consumers know each event id), loss is not. The alert outbox and
the governance outbox are two of these, each with its own pair of named queries: ``pending``
returns ``id``, ``key`` and ``body`` in publication order (``$1``: how many), ``clear``
deletes the ids it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaProducer

from services.common.kafka import TopicGuard
from services.common.serde.headers import Headers

#: a row's body -> the headers its record carries (the CloudEvents Kafka binding)
HeadersOf = Callable[[bytes], Headers]


class OutboxPublisher:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str,
                 pending: str, clear: str, guard: TopicGuard | None = None,
                 chunk: int = 1000, headers: HeadersOf | None = None) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._pending = pending
        self._clear = clear
        self._guard = guard
        self._chunk = chunk
        self._headers = headers
        self._lock = asyncio.Lock()  # one drain at a time keeps the publication order

    async def publish(self) -> int:
        """Publish every pending row; returns how many were published."""
        async with self._lock:
            published = 0
            while True:
                rows = await self._pool.fetch(self._pending, self._chunk)
                if not rows:
                    return published
                if self._guard is not None:  # never into a topic the broker lost
                    await self._guard.require([self._topic])
                sends = [await self._producer.send(
                    self._topic, r["body"], key=r["key"].encode(),
                    headers=self._headers(r["body"]) if self._headers is not None else None)
                    for r in rows]
                await asyncio.gather(*sends)
                await self._pool.execute(self._clear, [r["id"] for r in rows])
                published += len(rows)
