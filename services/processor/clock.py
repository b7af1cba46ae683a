"""Clocks for the deadline timer. Domain code never reads a clock: it is handed `now`.

- `WallClock`: live running; deadlines follow real time.
- `StreamClock`: replays; the time is the consumer's watermark (the lowest, over its
  partitions, of the latest recorded-at applied), so re-running a log raises what the log
  implies, not what the replay's wall time implies.
- `ManualClock`: tests set and advance it, to be exact at a 72-hour boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from services.processor.adapters import store


class Clock(Protocol):
    async def now(self, conn: asyncpg.Connection) -> datetime | None: ...


class WallClock:
    async def now(self, conn: asyncpg.Connection) -> datetime | None:
        return datetime.now(UTC)


class StreamClock:
    def __init__(self, consumer: str, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic

    async def now(self, conn: asyncpg.Connection) -> datetime | None:
        return await store.stream_clock(conn, self._consumer, self._topic)


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def advance(self, by: timedelta) -> None:
        self.at += by

    async def now(self, conn: asyncpg.Connection) -> datetime | None:
        return self.at
