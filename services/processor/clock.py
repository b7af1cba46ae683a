"""Clocks for the deadline timer. Domain code never reads a clock: it is handed `now`.

- `WallClock`: live running; deadlines follow real time.
- `StreamClock`: replays; a partition's time is the latest recorded-at applied from it, so
  re-running a log raises what the log implies, not what the replay's wall time implies.
- `ManualClock`: tests set and advance it, to be exact at a 72-hour boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from projections.queries import positions as sql


class Clock(Protocol):
    async def now(self, conn: asyncpg.Connection, partitions: list[int]) -> dict[int, datetime]:
        """The time for each partition (a partition with no time yet is left out)."""
        ...


class WallClock:
    async def now(self, conn: asyncpg.Connection, partitions: list[int]) -> dict[int, datetime]:
        at = datetime.now(UTC)
        return dict.fromkeys(partitions, at)


class StreamClock:
    def __init__(self, consumer: str, topic: str) -> None:
        self._consumer = consumer
        self._topic = topic

    async def now(self, conn: asyncpg.Connection, partitions: list[int]) -> dict[int, datetime]:
        rows = await conn.fetch(sql.PARTITION_CLOCKS, self._consumer, self._topic, partitions)
        return {r["partition"]: r["stream_clock"] for r in rows if r["stream_clock"] is not None}


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def advance(self, by: timedelta) -> None:
        self.at += by

    async def now(self, conn: asyncpg.Connection, partitions: list[int]) -> dict[int, datetime]:
        return dict.fromkeys(partitions, self.at)
