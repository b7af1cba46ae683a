"""Each team's live stream: the team feed, read once for the whole process and fanned out to
whoever holds a stream open (a duty board, a dispatch system).

The feed is read in (xid, seq) order, settled rows only (``0013_duty_teams.sql``), so a
position is a pair and the stream's event id is ``"<xid>-<seq>"``. A client that reconnects
with ``Last-Event-ID`` gets what it missed from the table, then the live entries after it.
A subscriber registers before it reads its backlog: an entry the backlog query could not
see yet (its transaction still running) cannot have been passed by the watch either, so it
arrives through the queue; entries at or before the backlog's last are dropped as seen.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg
import structlog

from projections.queries import duty as sql

log = structlog.get_logger("joinedup.stream")
_EVENT_ID: Final = re.compile(r"^(\d{1,20})-(\d{1,20})$")
#: a subscriber that falls this far behind is dropped (its client reconnects and resumes)
QUEUE_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True, order=True)
class Position:
    xid: int
    seq: int

    @property
    def event_id(self) -> str:
        return f"{self.xid}-{self.seq}"

    @classmethod
    def parse(cls, event_id: str) -> Position | None:
        found = _EVENT_ID.match(event_id.strip())
        return None if found is None else cls(int(found[1]), int(found[2]))


START: Final = Position(0, 0)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    position: Position
    team_id: str
    alert_id: str
    action: str
    version: int
    recorded_at: datetime


def _entry(row: asyncpg.Record) -> FeedEntry:
    return FeedEntry(Position(int(row["xid"]), row["seq"]), row["team_id"], row["alert_id"],
                     row["action"], row["version"], row["recorded_at"])


class Subscription:
    def __init__(self, teams: frozenset[str]) -> None:
        self.teams = teams
        self.queue: asyncio.Queue[FeedEntry | None] = asyncio.Queue()


class FeedWatch:
    """One poller of the feed per process; subscribers get their teams' entries."""

    def __init__(self, pool: asyncpg.Pool, poll_seconds: float = 0.1) -> None:
        self._pool = pool
        self._poll = poll_seconds
        self._subscribers: set[Subscription] = set()
        self._position: Position | None = None

    async def end(self) -> Position:
        row = await self._pool.fetchrow(sql.FEED_END)
        return Position(int(row["xid"]), row["seq"])

    async def run(self) -> None:
        self._position = await self.end()
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a server away: the next poll tries again
                log.warning("team feed poll failed", error=type(exc).__name__)
            await asyncio.sleep(self._poll)

    async def step(self) -> int:
        if self._position is None:
            self._position = await self.end()
        rows = await self._pool.fetch(sql.ALL_FEED_AFTER, self._position.xid,
                                      self._position.seq, 1000)
        for row in rows:
            entry = _entry(row)
            for subscriber in list(self._subscribers):
                if entry.team_id in subscriber.teams:
                    if subscriber.queue.qsize() >= QUEUE_LIMIT:
                        self._drop(subscriber)
                    else:
                        subscriber.queue.put_nowait(entry)
            self._position = entry.position
        return len(rows)

    def _drop(self, subscriber: Subscription) -> None:
        self._subscribers.discard(subscriber)
        subscriber.queue.put_nowait(None)

    async def backlog(self, teams: Sequence[str], after: Position, limit: int = 1000
                      ) -> list[FeedEntry]:
        rows = await self._pool.fetch(sql.FEED_AFTER, list(teams), after.xid,
                                      after.seq, limit)
        return [_entry(r) for r in rows]

    async def follow(self, teams: frozenset[str], after: Position | None
                     ) -> AsyncIterator[FeedEntry]:
        """The teams' entries after ``after`` (None: from now on), for as long as wanted."""
        subscription = Subscription(teams)
        self._subscribers.add(subscription)
        try:
            seen = after if after is not None else await self.end()
            while True:  # the backlog, in pages
                page = await self.backlog(sorted(teams), seen)
                for entry in page:
                    seen = entry.position
                    yield entry
                if len(page) < 1000:
                    break
            while True:
                live = await subscription.queue.get()
                if live is None:
                    return  # fell too far behind: the client reconnects and resumes
                if live.position > seen:
                    seen = live.position
                    yield live
        finally:
            self._subscribers.discard(subscription)
