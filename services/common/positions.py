"""The tracking rows (consumer, topic, partition -> next offset), at the asyncpg edge.

Positions are written in the same transaction as the effects they account for, and only ever
move from exactly where they are (`advance` is a compare-and-set): a batch that does not start
where the stored position is fails its transaction instead of recording a gap. With each
position goes the digest of the last record it covers (the log's anchor), so a consumer can
tell, before applying anything, that the log it finds is still the log it was reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from projections.queries import positions as sql
from projections.queries import read_models as read_models_sql


@dataclass(frozen=True, slots=True)
class Tracked:
    topic: str
    partition: int
    next_offset: int
    anchor: bytes | None    # digest of the record at next_offset - 1 (None: not known yet)


@dataclass(frozen=True, slots=True)
class Move:
    """A batch's claim on one partition: it covers [start, end) and ends with `anchor`."""

    topic: str
    partition: int
    start: int
    end: int
    anchor: bytes
    clock: datetime | None = None   # the latest recorded-at applied (the stream clock)


class PositionConflict(Exception):
    """The stored position is not where the batch starts: someone else moved it, or the
    consumer skipped. The batch's transaction must fail; the consumer re-reads positions."""


async def load(conn: asyncpg.Connection | asyncpg.Pool, consumer: str, topics: Iterable[str]
               ) -> dict[tuple[str, int], Tracked]:
    rows = await conn.fetch(sql.SELECT_TRACKED, consumer, sorted(set(topics)))
    return {(r["topic"], r["partition"]): Tracked(r["topic"], r["partition"], r["next_offset"],
                                                  r["anchor_digest"]) for r in rows}


async def start(conn: asyncpg.Connection | asyncpg.Pool, consumer: str,
                starts: dict[tuple[str, int], int]) -> None:
    """Rows for partitions seen for the first time, at the log's start offset."""
    if starts:
        keys = sorted(starts)
        await conn.execute(sql.START_TRACKING, consumer, [t for t, _ in keys],
                           [p for _, p in keys], [starts[k] for k in keys])


async def advance(conn: asyncpg.Connection, consumer: str, moves: Sequence[Move]) -> None:
    """Move each partition from exactly `start` to `end`, or raise PositionConflict."""
    if not moves:
        return
    moved = await conn.fetch(
        sql.ADVANCE, consumer, [m.topic for m in moves], [m.partition for m in moves],
        [m.start for m in moves], [m.end for m in moves], [m.anchor for m in moves],
        [m.clock for m in moves])
    if len(moved) != len(moves):
        stuck = {(m.topic, m.partition) for m in moves} - {(r["topic"], r["partition"])
                                                           for r in moved}
        raise PositionConflict(
            "stored position is not where the batch starts for "
            + ", ".join(f"{t}[{p}]" for t, p in sorted(stuck)))


async def record_anchor(conn: asyncpg.Connection | asyncpg.Pool, consumer: str, tracked: Tracked,
                        anchor: bytes) -> None:
    await conn.execute(sql.RECORD_ANCHOR, consumer, tracked.topic, tracked.partition,
                       tracked.next_offset, anchor)


async def restart(conn: asyncpg.Connection, consumer: str, tracked: Tracked, log_start: int,
                  reason: str) -> None:
    """The log was replaced: record it, and start again at the new log's start."""
    async with conn.transaction():
        moved = await conn.fetch(sql.RESTART_TRACKING, consumer, tracked.topic,
                                 tracked.partition, tracked.next_offset, log_start)
        if not moved:
            raise PositionConflict(f"{tracked.topic}[{tracked.partition}] moved meanwhile")
        await conn.execute(sql.RECORD_LOG_RESET, consumer, tracked.topic, tracked.partition,
                           tracked.next_offset, log_start, reason)
        # Read models in step with this consumer there follow it (the processor's only).
        await conn.execute(read_models_sql.RESTART_IN_STEP, tracked.topic, tracked.partition,
                           tracked.next_offset, log_start)


async def refuse(conn: asyncpg.Connection | asyncpg.Pool, consumer: str, tracked: Tracked,
                 reason: str) -> None:
    """The log was replaced and the consumer is configured to refuse: record it only."""
    await conn.execute(sql.RECORD_LOG_RESET, consumer, tracked.topic, tracked.partition,
                       tracked.next_offset, None, reason)
